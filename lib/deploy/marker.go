package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// DefaultRebootRequired is the file kured and similar agents watch.
const DefaultRebootRequired = "/run/reboot-required"

// RebootRequiredText is the content of the reboot-required file for an image.
func RebootRequiredText(image string) string {
	return "bootc: Reboot required for image: " + image + "\n"
}

// WriteRebootRequired (re)writes the reboot-required file naming image.
func WriteRebootRequired(path, image string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := renameio.WriteFile(path, []byte(RebootRequiredText(image)), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ClearRebootRequired removes the reboot-required file if it names image (and only then: a
// rollback queued meanwhile still needs its reboot).
func ClearRebootRequired(path, image string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if strings.TrimSpace(string(data)) != strings.TrimSpace(RebootRequiredText(image)) {
		return nil
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
