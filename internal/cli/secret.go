package cli

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecretFile returns the secret held in the file at path, without the
// trailing newline an editor or `echo` leaves. Errors name the file, never
// its content. Secrets come from files so that neither ps nor the
// environment of a process shows them (a mounted Kubernetes or Docker
// secret, for instance).
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the secret file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("the secret file %s is empty", path)
	}
	return s, nil
}
