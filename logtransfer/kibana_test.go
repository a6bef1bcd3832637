package logtransfer

import (
	"context"
	"testing"

	"github.com/logpipe/logpipe/internal/kibanatest"
	"github.com/logpipe/logpipe/internal/logging"
)

// TestSetupKibana: against Kibana 7.17 an index pattern, against 8.x a data view, with
// @timestamp as time field, the kbn-xsrf header and the configured credentials (the
// stand-in refuses requests without them); a second run finds it and creates nothing.
func TestSetupKibana(t *testing.T) {
	for _, c := range []struct {
		version, kind, mode, title string
	}{
		{"7.17.25", "index_pattern", "index", "*-*"},
		{"8.15.3", "data_view", "data_stream", "logs-*-default"},
	} {
		t.Run(c.version, func(t *testing.T) {
			kb := kibanatest.Start(c.version)
			defer kb.Close()
			kb.SetAuth("kibana_setup", "s3cret", "")
			cfg := DefaultConfig()
			cfg.ES.Mode = c.mode
			cfg.Kibana.URL = kb.URL()
			if _, err := SetupKibana(context.Background(), cfg, logging.Discard()); err == nil {
				t.Fatal("no credentials: accepted")
			}
			cfg.Kibana.Username, cfg.Kibana.Password = "kibana_setup", "s3cret"
			for i := 0; i < 2; i++ {
				v, err := SetupKibana(context.Background(), cfg, logging.Discard())
				if err != nil {
					t.Fatal(err)
				}
				if v.Created != (i == 0) || v.Kind != c.kind {
					t.Fatalf("run %d: %+v", i+1, v)
				}
			}
			views := kb.Views()
			if len(views) != 1 || kb.Creates() != 1 || views[0].Kind != c.kind || views[0].Title != c.title || views[0].TimeFieldName != "@timestamp" {
				t.Fatalf("views %+v, %d creates", views, kb.Creates())
			}
		})
	}
}
