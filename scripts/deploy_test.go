package scripts

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/broker"
	"github.com/logpipe/logpipe/internal/embedetcd"
	"github.com/logpipe/logpipe/internal/proctest"
	"github.com/logpipe/logpipe/logagent"
	"github.com/logpipe/logpipe/logagent/collect"
	"github.com/logpipe/logpipe/logtransfer"
	clientv3 "go.etcd.io/etcd/client/v3"
	"gopkg.in/ini.v1"
	"gopkg.in/yaml.v3"
)

const root = ".." // the repository, seen from this package's directory

var components = []string{"broker", "logagent", "logtransfer"}

type compose struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     []string       `yaml:"command"`
	Entrypoint  []string       `yaml:"entrypoint"`
	Environment []string       `yaml:"environment"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	User        string         `yaml:"user"`
	DependsOn   map[string]dep `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type dep struct {
	Condition string `yaml:"condition"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		// Unknown fields are allowed by compose; decode again loosely but keep the error visible.
		if err2 := yaml.Unmarshal(data, &c); err2 != nil {
			t.Fatalf("docker-compose.yml: %v", err2)
		}
	}
	return c
}

// mountOf returns the host source of the bind mount whose container target is target.
func mountOf(s service, target string) (src string, ro bool, ok bool) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0], len(parts) == 3 && parts[2] == "ro", true
		}
	}
	return "", false, false
}

func loadIni(t *testing.T, path string) *ini.File {
	t.Helper()
	f, err := ini.Load(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(hostport, "http://"), "https://"))
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

func TestComposeServicesAndImages(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"etcd", "elasticsearch", "kibana", "broker", "logtransfer", "logagent", "seed"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	pinned := regexp.MustCompile(`^docker\.elastic\.co/(elasticsearch/elasticsearch|kibana/kibana):7\.17\.\d+$`)
	for _, name := range []string{"elasticsearch", "kibana"} {
		if img := c.Services[name].Image; !pinned.MatchString(img) {
			t.Errorf("%s image %q is not pinned to 7.17.x", name, img)
		}
	}
	if img := c.Services["etcd"].Image; !regexp.MustCompile(`^quay\.io/coreos/etcd:v3\.\d+\.\d+$`).MatchString(img) {
		t.Errorf("etcd image %q: want the official quay.io/coreos/etcd:v3.x.y", img)
	}
	es := strings.Join(c.Services["elasticsearch"].Environment, "\n")
	for _, want := range []string{"discovery.type=single-node", "xpack.security.enabled=false", "-Xmx"} {
		if !strings.Contains(es, want) {
			t.Errorf("elasticsearch environment lacks %q", want)
		}
	}
	if !slices.Contains(c.Services["kibana"].Environment, "ELASTICSEARCH_HOSTS=http://elasticsearch:9200") {
		t.Errorf("kibana does not point at the elasticsearch service")
	}
	// The three components run from the image the Dockerfile builds; one builds it.
	builds := 0
	for _, name := range append(slices.Clone(components), "seed") {
		s := c.Services[name]
		if s.Image != "logpipe:latest" {
			t.Errorf("%s image %q, want logpipe:latest", name, s.Image)
		}
		if s.Build != nil {
			builds++
		}
	}
	if builds != 1 {
		t.Errorf("%d services build the image, want 1", builds)
	}
	for name, s := range c.Services {
		if name != "seed" && s.Healthcheck == nil {
			t.Errorf("%s has no healthcheck", name)
		}
		for d, cond := range s.DependsOn {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("%s depends on unknown service %s", name, d)
			}
			if cond.Condition != "service_healthy" && cond.Condition != "service_completed_successfully" {
				t.Errorf("%s depends on %s with condition %q", name, d, cond.Condition)
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			switch {
			case strings.HasPrefix(src, "./"):
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			case strings.HasPrefix(src, "/"):
			default:
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s uses volume %s, not declared under volumes:", name, src)
				}
			}
		}
	}
	wantDeps := map[string][]string{
		"logtransfer": {"broker", "elasticsearch"},
		"logagent":    {"etcd", "broker", "seed"},
		"seed":        {"etcd"},
		"kibana":      {"elasticsearch"},
	}
	for name, deps := range wantDeps {
		for _, d := range deps {
			if _, ok := c.Services[name].DependsOn[d]; !ok {
				t.Errorf("%s does not depend on %s", name, d)
			}
		}
	}
}

func TestComposeConfigsAreConsistent(t *testing.T) {
	c := loadCompose(t)
	cfgs := map[string]*ini.File{}
	for _, name := range components {
		s := c.Services[name]
		target := "/etc/logpipe/" + name + ".ini"
		src, ro, ok := mountOf(s, target)
		if !ok || !ro {
			t.Fatalf("%s does not mount its config read-only at %s", name, target)
		}
		if want := "./conf/docker/" + name + ".ini"; src != want {
			t.Errorf("%s mounts %s, want %s", name, src, want)
		}
		if want := []string{"/usr/local/bin/" + name, "-config", target}; !slices.Equal(s.Command, want) {
			t.Errorf("%s command %q, want %q", name, s.Command, want)
		}
		cfgs[name] = loadIni(t, src)
		// The healthcheck asks the port the component serves /healthz on.
		metrics := cfgs[name].Section("metrics").Key("listen").String()
		hc := strings.Join(s.Healthcheck.Test, " ")
		if !strings.Contains(hc, ":"+portOf(t, metrics)+"/healthz") {
			t.Errorf("%s healthcheck %q does not ask [metrics] listen %s", name, hc, metrics)
		}
		if host, _, _ := net.SplitHostPort(metrics); host != "0.0.0.0" {
			t.Errorf("%s [metrics] listen %s: want 0.0.0.0 inside a container", name, metrics)
		}
	}

	// Broker: other containers reach it by its service name on the port it listens on.
	bs := cfgs["broker"].Section("server")
	adv := bs.Key("advertised").String()
	advHost, advPort, _ := net.SplitHostPort(adv)
	if advHost != "broker" || advPort != portOf(t, bs.Key("listen").String()) {
		t.Errorf("broker advertised %s, listen %s: want broker:<listen port>", adv, bs.Key("listen").String())
	}
	if !slices.Contains(c.Services["broker"].Ports, "127.0.0.1:9092:"+advPort) {
		t.Errorf("broker ports %v do not publish %s", c.Services["broker"].Ports, advPort)
	}
	for _, name := range []string{"logagent", "logtransfer"} {
		if got := cfgs[name].Section("kafka").Key("brokers").String(); got != adv {
			t.Errorf("%s [kafka] brokers %s, want the broker's advertised %s", name, got, adv)
		}
	}

	// etcd: the agent's endpoint is the etcd service's client URL.
	etcd := strings.Join(c.Services["etcd"].Command, " ")
	ep := cfgs["logagent"].Section("etcd").Key("endpoints").String()
	if !strings.Contains(etcd, "--advertise-client-urls=http://"+ep) || !strings.Contains(etcd, "--listen-client-urls=http://0.0.0.0:"+portOf(t, ep)) {
		t.Errorf("agent [etcd] endpoints %s does not match the etcd service: %s", ep, etcd)
	}

	// Elasticsearch: the transfer's URL is the elasticsearch service on 9200.
	if got := cfgs["logtransfer"].Section("es").Key("urls").String(); got != "http://elasticsearch:9200" {
		t.Errorf("transfer [es] urls %s, want http://elasticsearch:9200", got)
	}
	if got := cfgs["logtransfer"].Section("output").Key("type").String(); got != "elasticsearch" {
		t.Errorf("transfer [output] type %s, want elasticsearch", got)
	}

	// Data lives on volumes.
	for name, dirKey := range map[string][2]string{"broker": {"log", "dir"}, "logagent": {"agent", "data_dir"}} {
		dir := cfgs[name].Section(dirKey[0]).Key(dirKey[1]).String()
		found := false
		for _, v := range c.Services[name].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") && strings.HasPrefix(dir, parts[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s data dir %s is not on a named volume", name, dir)
		}
	}

	// Agent: host /var/log read-only; the seeded config names files under it, on
	// topics the transfer consumes; the seed uses the same agent config.
	agent := c.Services["logagent"]
	if src, ro, ok := mountOf(agent, "/var/log/host"); !ok || !ro || src != "/var/log" {
		t.Errorf("logagent must mount /var/log read-only at /var/log/host")
	}
	seed := c.Services["seed"]
	if src, _, ok := mountOf(seed, "/etc/logpipe/logagent.ini"); !ok || src != "./conf/docker/logagent.ini" {
		t.Errorf("seed does not use conf/docker/logagent.ini")
	}
	ccSrc, _, ok := mountOf(seed, "/etc/logpipe/collect_config.json")
	if !ok || !strings.Contains(strings.Join(seed.Command, " "), "config put /etc/logpipe/collect_config.json") {
		t.Fatalf("seed does not put /etc/logpipe/collect_config.json")
	}
	data, err := os.ReadFile(filepath.Join(root, ccSrc))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := collect.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", ccSrc, err)
	}
	spec := cfgs["logtransfer"].Section("kafka").Key("topics").String()
	topics, err := logtransfer.ParseTopics(spec, "{topic}.dlq")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cc {
		if !strings.HasPrefix(e.Path, "/var/log/host/") {
			t.Errorf("seeded path %s is outside the /var/log/host mount", e.Path)
		}
		if !slices.Contains(topics.Resolve([]string{e.Topic}), e.Topic) {
			t.Errorf("seeded topic %s is not among the transfer's topics %s", e.Topic, spec)
		}
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0", "./cmd/broker", "./cmd/logagent", "./cmd/logtransfer", "COPY --from=build"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n != 2 {
		t.Errorf("Dockerfile has %d stages, want a builder and one runtime stage", n)
	}
	for _, name := range components {
		if !strings.Contains(df, "/out/"+name) {
			t.Errorf("runtime image lacks %s", name)
		}
	}
	di, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bin", "data", ".git"} {
		if !slices.Contains(strings.Split(string(di), "\n"), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// unit reads a systemd unit's [Service] keys (the last value of a repeated key wins).
func unit(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := ini.LoadSources(ini.LoadOptions{AllowShadows: true}, name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m := map[string]string{}
	for _, k := range f.Section("Service").Keys() {
		m[k.Name()] = k.String()
	}
	if f.Section("Install").Key("WantedBy").String() != "multi-user.target" {
		t.Errorf("%s: WantedBy is not multi-user.target", name)
	}
	return m
}

func TestSystemdUnits(t *testing.T) {
	install, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range components {
		u := unit(t, "logpipe-"+name+".service")
		want := map[string]string{
			"ExecStart":       "/usr/local/bin/" + name + " -config /etc/logpipe/" + name + ".ini",
			"Restart":         "on-failure",
			"User":            "logpipe",
			"NoNewPrivileges": "yes",
			"ProtectSystem":   "strict",
			"ReadWritePaths":  "/var/lib/logpipe",
		}
		for k, v := range want {
			if u[k] != v {
				t.Errorf("logpipe-%s.service %s=%q, want %q", name, k, u[k], v)
			}
		}
		for _, k := range []string{"LimitNOFILE", "TimeoutStopSec"} {
			if u[k] == "" {
				t.Errorf("logpipe-%s.service lacks %s", name, k)
			}
		}
		if (u["SupplementaryGroups"] == "adm") != (name == "logagent") {
			t.Errorf("logpipe-%s.service SupplementaryGroups=%q: only the agent joins adm", name, u["SupplementaryGroups"])
		}
		if !strings.Contains(string(install), "components=(broker logagent logtransfer)") {
			t.Errorf("install.sh does not install the three components")
		}
	}
}

// fakeBins writes stand-in executables, so the install test needs no build.
func fakeBins(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range append(slices.Clone(components), "logpipectl") {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runInstall(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"install.sh"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestInstallPrefixIdempotent(t *testing.T) {
	bins := fakeBins(t)
	prefix := filepath.Join(t.TempDir(), "root")
	out := runInstall(t, "--prefix", prefix, "--bin", bins)
	if !strings.Contains(out, "dry run") {
		t.Errorf("no dry-run notice:\n%s", out)
	}
	var want []string
	for _, name := range components {
		want = append(want,
			"usr/local/bin/"+name,
			"etc/logpipe/"+name+".ini",
			"etc/systemd/system/logpipe-"+name+".service")
	}
	want = append(want, "usr/local/bin/logpipe-put-collect-config", "usr/local/bin/logpipectl", "var/lib/logpipe")
	tree := func() map[string]string {
		m := map[string]string{}
		filepath.Walk(prefix, func(p string, fi os.FileInfo, err error) error {
			if err == nil && p != prefix {
				r, _ := filepath.Rel(prefix, p)
				m[r] = fi.Mode().String()
			}
			return nil
		})
		return m
	}
	first := tree()
	for _, p := range want {
		if _, ok := first[p]; !ok {
			t.Errorf("%s not installed; tree: %v", p, first)
		}
	}
	for _, name := range components {
		if first["usr/local/bin/"+name] != "-rwxr-xr-x" {
			t.Errorf("%s mode %s", name, first["usr/local/bin/"+name])
		}
		got, _ := os.ReadFile(filepath.Join(prefix, "etc/logpipe", name+".ini"))
		src, _ := os.ReadFile(filepath.Join(root, "conf", name+".ini"))
		if !bytes.Equal(got, src) {
			t.Errorf("etc/logpipe/%s.ini differs from conf/%s.ini", name, name)
		}
		unitGot, _ := os.ReadFile(filepath.Join(prefix, "etc/systemd/system/logpipe-"+name+".service"))
		unitSrc, _ := os.ReadFile("logpipe-" + name + ".service")
		if !bytes.Equal(unitGot, unitSrc) {
			t.Errorf("unit of %s differs from scripts/", name)
		}
	}
	// Every ini may hold a secret (passwords, API keys): readable by root and
	// the logpipe group only.
	for _, name := range append(append([]string{}, components...), "logpipectl") {
		if m := first["etc/logpipe/"+name+".ini"]; m != "-rw-r-----" {
			t.Errorf("etc/logpipe/%s.ini mode %s, want -rw-r-----", name, m)
		}
	}
	if first["var/lib/logpipe"] != "drwxr-x---" {
		t.Errorf("var/lib/logpipe mode %s", first["var/lib/logpipe"])
	}

	// An operator edits a config; a second run keeps it and changes nothing else.
	edited := filepath.Join(prefix, "etc/logpipe/logagent.ini")
	if err := os.WriteFile(edited, []byte("[kafka]\nbrokers = kafka-1:9092\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	out = runInstall(t, "--prefix", prefix, "--bin", bins)
	if !strings.Contains(out, "kept existing /etc/logpipe/logagent.ini") {
		t.Errorf("second run does not say it kept the config:\n%s", out)
	}
	if got, _ := os.ReadFile(edited); string(got) != "[kafka]\nbrokers = kafka-1:9092\n" {
		t.Errorf("second run overwrote the edited config: %q", got)
	}
	if second := tree(); !mapsEqual(first, second) {
		t.Errorf("second run changed the tree:\n%v\n%v", first, second)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestInstallRefusesWithoutBinaries(t *testing.T) {
	cmd := exec.Command("bash", "install.sh", "--prefix", t.TempDir(), "--bin", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "run 'make build' first") {
		t.Fatalf("install.sh without binaries: %v\n%s", err, out)
	}
}

// TestConfigsLoad loads every shipped ini file with its component's LoadConfig.
func TestConfigsLoad(t *testing.T) {
	for _, dir := range []string{"conf", "conf/dev", "conf/docker"} {
		b := filepath.Join(root, dir, "broker.ini")
		if _, err := broker.LoadConfig(b); err != nil {
			t.Errorf("broker.LoadConfig(%s): %v", b, err)
		}
		a := filepath.Join(root, dir, "logagent.ini")
		if _, err := logagent.LoadConfig(a); err != nil {
			t.Errorf("logagent.LoadConfig(%s): %v", a, err)
		}
		x := filepath.Join(root, dir, "logtransfer.ini")
		if _, err := logtransfer.LoadConfig(x); err != nil {
			t.Errorf("logtransfer.LoadConfig(%s): %v", x, err)
		}
	}
}

// TestPutCollectConfig runs put-collect-config.sh against a real etcd with a freshly
// built logagent: an invalid file is refused and stores nothing; a valid one lands at
// the key of the host logagent.ini names.
func TestPutCollectConfig(t *testing.T) {
	tmp := t.TempDir()
	agent := filepath.Join(proctest.Build(t, tmp, "logagent"), "logagent")
	etcd, err := embedetcd.Start(filepath.Join(tmp, "etcd"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	iniPath := filepath.Join(tmp, "logagent.ini")
	os.WriteFile(iniPath, []byte("[agent]\nhost = web-7\ndata_dir = "+tmp+"/data\n[etcd]\nendpoints = "+etcd.Endpoint()+"\n"), 0o644)
	bad := filepath.Join(tmp, "bad.json")
	os.WriteFile(bad, []byte(`[{"path": "/var/log/x.log"}]`), 0o644)
	good := filepath.Join(tmp, "good.json")
	os.WriteFile(good, []byte(`[{"path": "/var/log/nginx/access.log", "topic": "web_log"}]`), 0o644)

	run := func(file string) (string, error) {
		cmd := exec.Command("bash", "put-collect-config.sh", "-c", iniPath, file)
		cmd.Env = append(os.Environ(), "LOGAGENT="+agent)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	get := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "/logagent/web-7/collect_config")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	if out, err := run(bad); err == nil || !strings.Contains(out, "topic") {
		t.Errorf("invalid file accepted: %v\n%s", err, out)
	}
	if v := get(); v != "" {
		t.Errorf("invalid file stored %q", v)
	}
	if out, err := run(good); err != nil {
		t.Fatalf("valid file refused: %v\n%s", err, out)
	}
	if v := get(); !strings.Contains(v, `"/var/log/nginx/access.log"`) || !strings.Contains(v, `"web_log"`) {
		t.Errorf("stored %q", v)
	}
}
