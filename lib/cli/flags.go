package cli

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// A flag that a grammar keeps for compatibility but this build does not implement carries
// `unsupported:"why"`; a command that does not use some flags it inherits from its parents lists
// them in `unsupportedflags:"sysroot,cmdline"`. Setting such a flag on the command line fails
// with a usage error "not supported: --flag (why)" before anything runs, so no flag is accepted
// and then ignored. Values from the environment are not refused: they are meant for every tool.

// NotSupported is the entry a flag table (see CheckFlagTable) gives a flag that is refused.
const NotSupported = "not supported"

// markUnsupported says so in the help of every flag tagged unsupported.
func markUnsupported(n *kong.Node) {
	for _, f := range n.Flags {
		if f.Tag != nil && f.Tag.Has("unsupported") {
			f.Help = strings.TrimSpace(f.Help + " Not supported by this build.")
		}
	}
	for _, c := range n.Children {
		markUnsupported(c)
	}
}

// refuseUnsupported fails when the command line sets a flag the selected command does not
// support; command is the command's display name ("bootc rollback").
func refuseUnsupported(k *kong.Context, command string) error {
	for _, p := range k.Path {
		if p.Flag == nil || p.Resolved {
			continue
		}
		if why := unsupportedWhy(k.Selected(), k.Model.Node, p.Flag, command); why != "" {
			return fmt.Errorf("not supported: --%s (%s)", p.Flag.Name, why)
		}
	}
	return nil
}

// unsupportedWhy is why flag cannot be used with the command selected (nil: the tool itself,
// root), or "" when it can.
func unsupportedWhy(selected, root *kong.Node, flag *kong.Flag, command string) string {
	if flag.Tag != nil {
		if why := flag.Tag.Get("unsupported"); why != "" {
			return why
		}
	}
	if selected == nil {
		selected = root
	}
	for n := selected; n != nil; n = n.Parent {
		if n.Tag != nil && slices.Contains(strings.Split(n.Tag.Get("unsupportedflags"), ","), flag.Name) {
			return command + " does not use it"
		}
	}
	return ""
}

// commandName is the program name followed by the commands selected so far ("bootc image list").
func commandName(name string, k *kong.Context) string {
	for _, p := range k.Path {
		if p.Command != nil {
			name += " " + p.Command.Name
		}
	}
	return name
}

// FlagUse is one flag as one command accepts it.
type FlagUse struct {
	// Key names it in a flag table: "verb --flag" ("image list --format"), or "--flag" for a
	// tool without subcommands.
	Key string
	// Flag is the flag's long name, without dashes.
	Flag string
	// Args is a command line that sets the flag and everything the command requires.
	Args []string
	// Refused tells whether the grammar marks the flag unsupported for this command.
	Refused bool
}

// FlagUses lists, for every command of grammar that can run (hidden ones included), each flag
// it accepts: its own and those of its parents. Kong's --help is left out.
func FlagUses(grammar any) ([]FlagUse, error) {
	parser, err := kong.New(grammar, kong.Name("x"), kong.Exit(func(int) {}))
	if err != nil {
		return nil, err
	}
	root := parser.Model.Node
	commands := root.Leaves(false)
	if len(root.Children) == 0 {
		commands = []*kong.Node{root}
	}
	var uses []FlagUse
	for _, n := range commands {
		var chain []*kong.Node // the root first, n last
		for m := n; m != nil; m = m.Parent {
			chain = append([]*kong.Node{m}, chain...)
		}
		var required []string
		for _, pos := range n.Positional {
			if pos.Required {
				required = append(required, sample(pos))
			}
		}
		for _, m := range chain {
			for _, f := range m.Flags {
				if f.Required {
					required = append(required, setFlag(f))
				}
			}
		}
		for i, m := range chain {
			for _, f := range m.Flags {
				if f.Name == "help" {
					continue
				}
				// The flag goes right after the command that defines it: after a verb that
				// passes its arguments through, it would be the step tool's.
				var path, args []string
				for j, c := range chain {
					if c.Type == kong.CommandNode {
						path = append(path, c.Name)
						args = append(args, c.Name)
					}
					if j == i && !f.Required {
						args = append(args, setFlag(f))
					}
				}
				args = append(args, required...)
				uses = append(uses, FlagUse{
					Key:     strings.TrimSpace(strings.Join(path, " ") + " --" + f.Name),
					Flag:    f.Name,
					Args:    args,
					Refused: unsupportedWhy(n, root, f, "") != "",
				})
			}
		}
	}
	return uses, nil
}

// setFlag is a command-line argument that sets f to a value it accepts.
func setFlag(f *kong.Flag) string {
	if f.IsBool() {
		return "--" + f.Name
	}
	return "--" + f.Name + "=" + sample(f.Value)
}

// sample is a value v accepts: its first choice, a small number, or a path that exists.
func sample(v *kong.Value) string {
	for _, e := range v.EnumSlice() {
		if e != "" {
			return e
		}
	}
	t := v.Target.Type()
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "1s"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return "1"
	}
	return "/"
}

// CheckFlagTable compares the flags of a tool's grammar with a table of what each one changes
// ("verb --flag" → the behaviour, or NotSupported), which its tests keep: every flag needs an
// entry, every entry a flag, and each NotSupported flag must be refused, with exit status
// ExitUsage and one line "…: error: not supported: --flag (…)", when Run is given it.
// newGrammar returns a fresh grammar for each run. The result lists the problems found.
func CheckFlagTable(name string, newGrammar func() any, table map[string]string) []string {
	uses, err := FlagUses(newGrammar())
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	seen := map[string]bool{}
	for _, u := range uses {
		seen[u.Key] = true
		behaviour, ok := table[u.Key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%q has no entry: say what it changes, or mark it %q", u.Key, NotSupported))
			continue
		case strings.TrimSpace(behaviour) == "":
			problems = append(problems, fmt.Sprintf("%q: empty entry", u.Key))
		case (behaviour == NotSupported) != u.Refused:
			problems = append(problems, fmt.Sprintf("%q: the table says %q but the grammar %s it", u.Key, behaviour, map[bool]string{true: "refuses", false: "accepts"}[u.Refused]))
		}
		if behaviour != NotSupported {
			continue
		}
		var out, errOut strings.Builder
		ran := false
		code := Run(name, "", newGrammar(), u.Args, &out, &errOut, func(context.Context, *kong.Context) error {
			ran = true
			return nil
		})
		stderr := errOut.String()
		want := ": error: not supported: --" + u.Flag + " ("
		switch {
		case ran:
			problems = append(problems, fmt.Sprintf("%q (%v): the command ran", u.Key, u.Args))
		case code != ExitUsage:
			problems = append(problems, fmt.Sprintf("%q (%v): exit status %d, want %d (stderr %q)", u.Key, u.Args, code, ExitUsage, stderr))
		case strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, ")\n") || !strings.Contains(stderr, want):
			problems = append(problems, fmt.Sprintf("%q (%v): stderr %q, want one line with %q", u.Key, u.Args, stderr, want))
		}
	}
	for key := range table {
		if !seen[key] {
			problems = append(problems, fmt.Sprintf("%q is in the table but no command has that flag", key))
		}
	}
	slices.Sort(problems)
	return problems
}

// MissingFlags returns, of the flags want lists per command ("image list": {"format"}; "" for
// a tool without commands), those
// grammar does not have, as "command --flag" keys: for tests that hold a tool to another
// tool's command line.
func MissingFlags(grammar any, want map[string][]string) ([]string, error) {
	uses, err := FlagUses(grammar)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, u := range uses {
		have[u.Key] = true
	}
	var missing []string
	for cmd, flags := range want {
		for _, f := range flags {
			key := strings.TrimSpace(cmd + " --" + f) // "" is a tool without commands
			if !have[key] {
				missing = append(missing, key)
			}
		}
	}
	slices.Sort(missing)
	return missing, nil
}
