package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/outbound-webhooks/outbound/"

// allowed lists, for every package of the module, the module packages it may
// import. A package missing here fails the test, so a new one states its place.
// The wiring (below) is not listed: it may import any package.
var allowed = map[string][]string{
	"schemas":             {"internal/ctrlchar", "internal/clip"},
	"internal/clip":       {},
	"internal/chanbatch":  {},
	"internal/childproc":  {},
	"internal/bgserve":    {},
	"webhook":             {"schemas"},
	"internal/webhooklog": {"internal/urls", "internal/redisconn"},
	"internal/redisconn":  {"internal/cli"},
	"internal/redistest":  {"internal/redisconn", "internal/childproc"},
	"internal/layout":     {},
	"internal/cli":        {},
	"scripts/freeport":    {},
	"internal/testenv":    {"internal/topics", "internal/cli", "internal/kafkaconn", "internal/redisconn"},
	"internal/topics":     {"internal/kafkaconn"},
	"internal/kafkaconn":  {"internal/cli"},
	"internal/smtptest":   {},
	"internal/retry":      {},
	"internal/ctrlchar":   {},
	"internal/urls":       {"internal/ctrlchar"},
	"internal/faults":     {},
	"internal/redisbatch": {},
	"processor":           {"schemas", "webhook", "windowing", "internal/webhooklog", "internal/retry", "internal/faults", "internal/clip", "internal/kafkaconn", "internal/chanbatch"},
	"windowing":           {"schemas", "webhook", "internal/faults"},
	"sink":                {"schemas", "webhook", "windowing", "internal/webhooklog", "internal/retry", "internal/urls", "internal/faults", "internal/redisbatch"},
	"control":             {"schemas", "webhook", "internal/webhooklog", "internal/retry", "internal/ctrlchar", "internal/urls", "internal/kafkaconn"},
	// The worker's builder sits above the stages and the control plane and
	// below the commands; it is linked into the worker binary, so it may import
	// no test or demo machinery.
	"internal/app":         {"schemas", "webhook", "processor", "windowing", "sink", "control", "internal/webhooklog", "internal/urls", "internal/retry", "internal/console", "internal/redisconn", "internal/kafkaconn"},
	"internal/app/apptest": {"schemas", "control", "internal/testenv", "internal/redisconn", "internal/kafkaconn"},
	// The workspace page: reads what the stages keep, publishes through control.
	"internal/console": {"schemas", "webhook", "windowing", "sink", "control", "internal/webhooklog", "internal/urls", "internal/settings"},
	// What a person may type as a webhook's settings: ctl and the console share it.
	"internal/settings": {"webhook", "sink", "internal/urls"},
}

// wiring (the commands, the demo, the bench and the chaos harness) may import anything; nothing
// but other wiring may import it.
var wiring = []string{"cmd/", "internal/bench", "internal/demo", "internal/chaos"}

func isWiring(pkg string) bool {
	return slices.ContainsFunc(wiring, func(w string) bool { return strings.HasPrefix(pkg, w) })
}

type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

// goList runs `go list -json` with args and decodes its stream of packages.
func goList(t *testing.T, args ...string) []listed {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func local(imports []string) []string {
	var out []string
	for _, imp := range imports {
		if rest, ok := strings.CutPrefix(imp, module); ok {
			out = append(out, rest)
		}
	}
	return out
}

func TestImportsFlowOneWay(t *testing.T) {
	for _, p := range goList(t, module+"...") {
		pkg := strings.TrimPrefix(p.ImportPath, module)
		if isWiring(pkg) {
			continue
		}
		ok, listedHere := allowed[pkg]
		if !listedHere {
			t.Errorf("package %s has no entry in allowed: add one that states what it may import", pkg)
			continue
		}
		for _, imp := range local(p.Imports) {
			if !slices.Contains(ok, imp) {
				t.Errorf("%s imports %s; allowed: %v", pkg, imp, ok)
			}
		}
		// A stage's tests may use the test helpers, but never the wiring.
		for _, imp := range local(append(p.TestImports, p.XTestImports...)) {
			if isWiring(imp) {
				t.Errorf("tests of %s import the wiring package %s", pkg, imp)
			}
		}
	}
}

func TestWorkerBinaryLinksNoTestMachinery(t *testing.T) {
	p := goList(t, "-deps=false", module+"cmd/outbound")
	if len(p) != 1 {
		t.Fatalf("go list cmd/outbound returned %d packages", len(p))
	}
	forbidden := []string{
		"testing",
		"github.com/twmb/franz-go/pkg/kfake",
		"github.com/alicebob/miniredis/v2",
		module + "internal/bench",
		module + "internal/smtptest",
		module + "internal/testenv",
		module + "internal/demo",
	}
	for _, dep := range p[0].Deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("the worker binary links %s", dep)
			}
		}
	}
}
