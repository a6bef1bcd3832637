package logtransfer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/logpipe/logpipe/internal/tlsconfig"
	"github.com/logpipe/logpipe/logtransfer/output"
)

// KibanaView is what SetupKibana made sure exists.
type KibanaView struct {
	Kind    string // index_pattern (Kibana 7) or data_view (Kibana 8)
	ID      string
	Title   string
	Created bool // false: it existed already
	Version string
}

// kibanaTitle is the index pattern of the data view: [kibana] title, or the glob of
// where the documents go (logs-*-default, *-*).
func (c Config) kibanaTitle() string {
	if c.Kibana.Title != "" {
		return c.Kibana.Title
	}
	return output.Glob(c.indexPattern())
}

var nonID = regexp.MustCompile(`[^a-z0-9]+`)

// SetupKibana creates, if it does not exist, the index pattern (Kibana 7.x) or data
// view (Kibana 8.x) of the transfer's documents with @timestamp as time field, like
// filebeat setup. It is idempotent: the object has a fixed id, looked up first.
func SetupKibana(ctx context.Context, cfg Config, log *slog.Logger) (KibanaView, error) {
	k := cfg.Kibana
	if k.URL == "" {
		return KibanaView{}, errors.New("[kibana] url is empty")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if k.CAFile != "" || k.Insecure {
		tc, err := tlsconfig.Client(tlsconfig.ClientOptions{CAFile: k.CAFile, InsecureSkipVerify: k.Insecure})
		if err != nil {
			return KibanaView{}, fmt.Errorf("kibana: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	defer tr.CloseIdleConnections()
	auth := ""
	switch {
	case k.APIKey != "" || k.APIKeyFile != "":
		key := k.APIKey
		if k.APIKeyFile != "" {
			var err error
			if key, err = readSecret("api_key_file", k.APIKeyFile); err != nil {
				return KibanaView{}, fmt.Errorf("kibana: %w", err)
			}
		}
		if strings.Contains(key, ":") {
			key = base64.StdEncoding.EncodeToString([]byte(key))
		}
		auth = "ApiKey " + key
	case k.Username != "":
		pw := k.Password
		if k.PasswordFile != "" {
			var err error
			if pw, err = readSecret("password_file", k.PasswordFile); err != nil {
				return KibanaView{}, fmt.Errorf("kibana: %w", err)
			}
		}
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(k.Username+":"+pw))
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := strings.TrimSuffix(k.URL, "/")
	call := func(method, path string, body any, out any) (int, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return 0, fmt.Errorf("kibana: %w", err)
		}
		req.Header.Set("kbn-xsrf", "true")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, fmt.Errorf("kibana %s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode == 401 || resp.StatusCode == 403 {
			return resp.StatusCode, fmt.Errorf("kibana %s %s: %d: check [kibana] username/password or api_key (the user needs the kibana_admin role, or the privilege to manage data views)", method, path, resp.StatusCode)
		}
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, fmt.Errorf("kibana %s %s: %w", method, path, err)
			}
		}
		if resp.StatusCode >= 300 && resp.StatusCode != 404 {
			return resp.StatusCode, fmt.Errorf("kibana %s %s: %d %.300s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, nil
	}
	var status struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	if _, err := call("GET", "/api/status", nil, &status); err != nil {
		return KibanaView{}, err
	}
	v := KibanaView{Title: cfg.kibanaTitle(), Version: status.Version.Number}
	v.ID = "logpipe-" + strings.Trim(nonID.ReplaceAllString(strings.ToLower(strings.ReplaceAll(v.Title, "*", "x")), "-"), "-")
	major := 0
	fmt.Sscanf(v.Version, "%d", &major)
	var path string
	spec := map[string]any{"id": v.ID, "title": v.Title, "timeFieldName": "@timestamp"}
	switch {
	case major == 7:
		v.Kind, path = "index_pattern", "/api/index_patterns/index_pattern"
	case major >= 8:
		v.Kind, path = "data_view", "/api/data_views/data_view"
		spec["name"] = "logpipe " + v.Title
	default:
		return v, fmt.Errorf("kibana %q: want 7.17 or 8.x", v.Version)
	}
	st, err := call("GET", path+"/"+v.ID, nil, nil)
	if err != nil {
		return v, err
	}
	if st == 200 {
		log.Info("kibana: exists already", "kind", v.Kind, "id", v.ID, "title", v.Title, "kibana", v.Version)
		return v, nil
	}
	if _, err := call("POST", path, map[string]any{v.Kind: spec}, nil); err != nil {
		return v, err
	}
	v.Created = true
	log.Info("kibana: created", "kind", v.Kind, "id", v.ID, "title", v.Title, "time_field", "@timestamp", "kibana", v.Version)
	return v, nil
}
