package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// The small step tools run at shutdown and in pipelines: they must not pull in the container
// libraries, which only fetching and bound images need.
func TestSmallToolsDoNotLinkContainerLibraries(t *testing.T) {
	heavy := []string{"go.podman.io/", "github.com/containers/", "github.com/docker/"}
	for _, tool := range []string{"bootc", "bootc-status", "bootc-kargs", "bootc-stage", "bootc-finalize", "bootc-install", "bootc-health"} {
		out, err := exec.Command("go", "list", "-deps", "gobootc.dev/tools/"+tool).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", tool, err, out)
		}
		if !strings.Contains(string(out), "gobootc.dev/lib/cli") {
			t.Fatalf("%s: dependency list looks wrong:\n%s", tool, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			for _, h := range heavy {
				if strings.HasPrefix(pkg, h) {
					t.Errorf("%s links %s", tool, pkg)
				}
			}
		}
	}
}
