package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// FlagSet wraps flag.FlagSet so that every flag has an OUTBOUND_* environment
// equivalent: the environment sets the default, an explicit flag wins. The
// embedded FlagSet's own methods define flags without one.
type FlagSet struct {
	*flag.FlagSet
	envErrs []string
}

// NewFlagSet returns an empty FlagSet whose --help prints usage, then the flags.
func NewFlagSet(name, usage string) *FlagSet {
	fs := &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags (each also read from the environment variable shown):\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func envName(name string) string {
	return "OUTBOUND_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (fs *FlagSet) envUsage(name, usage string) string {
	return fmt.Sprintf("%s (env %s)", usage, envName(name))
}

func (fs *FlagSet) envValue(name string) (string, bool) {
	return os.LookupEnv(envName(name))
}

func (fs *FlagSet) StringVar(p *string, name, def, usage string) {
	if v, ok := fs.envValue(name); ok {
		def = v
	}
	fs.FlagSet.StringVar(p, name, def, fs.envUsage(name, usage))
}

// envParse reads the environment value of a flag with parse, recording an error
// that names the variable when it does not parse.
func envParse[T any](fs *FlagSet, name string, def T, want string, parse func(string) (T, error)) T {
	v, ok := fs.envValue(name)
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		fs.envErrs = append(fs.envErrs, fmt.Sprintf("%s=%q: want %s", envName(name), v, want))
		return def
	}
	return x
}

func (fs *FlagSet) BoolVar(p *bool, name string, def bool, usage string) {
	def = envParse(fs, name, def, "true or false", strconv.ParseBool)
	fs.FlagSet.BoolVar(p, name, def, fs.envUsage(name, usage))
}

func (fs *FlagSet) DurationVar(p *time.Duration, name string, def time.Duration, usage string) {
	def = envParse(fs, name, def, "a duration such as 5s", time.ParseDuration)
	fs.FlagSet.DurationVar(p, name, def, fs.envUsage(name, usage))
}

func (fs *FlagSet) Float64Var(p *float64, name string, def float64, usage string) {
	def = envParse(fs, name, def, "a number", func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
	fs.FlagSet.Float64Var(p, name, def, fs.envUsage(name, usage))
}

func (fs *FlagSet) IntVar(p *int, name string, def int, usage string) {
	def = envParse(fs, name, def, "an integer", strconv.Atoi)
	fs.FlagSet.IntVar(p, name, def, fs.envUsage(name, usage))
}

func (fs *FlagSet) Int64Var(p *int64, name string, def int64, usage string) {
	def = envParse(fs, name, def, "an integer", func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
	fs.FlagSet.Int64Var(p, name, def, fs.envUsage(name, usage))
}

// Parse parses args and reports bad environment values as errors too. Every
// error but --help is a usage error (exit status 2), and so is an argument
// left over.
func (fs *FlagSet) Parse(args []string) error {
	if err := fs.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError(err)
	}
	if len(fs.envErrs) > 0 {
		return UsageError(fmt.Errorf("invalid environment: %s", strings.Join(fs.envErrs, "; ")))
	}
	if fs.NArg() > 0 {
		return UsageError(fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	return nil
}

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
