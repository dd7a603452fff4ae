package cli

// Version is the project's version, which every tool prints for --version as "NAME VERSION" on
// one line (agents read the first line of `bootc --version`).
const Version = "0.1.0"

// UserAgent is what the tools send to registries, so that a registry or proxy sees who pulls:
// it starts with bootc/VERSION, as upstream bootc's requests do.
func UserAgent() string { return "bootc/" + Version }

// versionArgs says whether args ask for the version and nothing else.
func versionArgs(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-V")
}
