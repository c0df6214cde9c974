package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFlagsFallBackToTheEnvironment(t *testing.T) {
	t.Setenv("OUTBOUND_GRACE", "2m")
	t.Setenv("OUTBOUND_GROUP_ID", "from-env")
	fs := NewFlagSet("test", "")
	var grace time.Duration
	var group string
	fs.DurationVar(&grace, "grace", time.Minute, "")
	fs.StringVar(&group, "group-id", "outbound", "")
	if err := fs.Parse([]string{"--group-id", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if grace != 2*time.Minute || group != "from-flag" {
		t.Errorf("grace %s, group %q: want the environment's 2m and the flag's from-flag", grace, group)
	}

	t.Setenv("OUTBOUND_GRACE", "soon")
	fs = NewFlagSet("test", "")
	fs.DurationVar(&grace, "grace", time.Minute, "")
	if err := fs.Parse(nil); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "OUTBOUND_GRACE") {
		t.Errorf("a bad environment value: Parse = %v, want a usage error naming OUTBOUND_GRACE", err)
	}
}

func TestStatus(t *testing.T) {
	fs := NewFlagSet("test", "")
	var stderr bytes.Buffer
	fs.SetOutput(&stderr)
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{fs.Parse([]string{"--help"}), 0},
		{fs.Parse([]string{"stray"}), 2},
		{errors.New("broker down"), 1},
	} {
		if got := Status(&stderr, "outbound x", c.err); got != c.want {
			t.Errorf("Status(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if !strings.Contains(stderr.String(), "outbound x: broker down") {
		t.Errorf("Status printed %q, want the error after the command's name", stderr.String())
	}
}
