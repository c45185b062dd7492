package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/meshnode/meshnode/experts/dataset"
	"github.com/meshnode/meshnode/node"
)

// env is what every command shares: global flags and output streams.
type env struct {
	repoPath string
	json     bool
	out, err io.Writer
	catalog  dataset.Catalog
}

func (e *env) repo() (*node.Repo, error) { return node.Open(e.repoPathOrDefault()) }

// repoPathOrDefault is --repo, or the default repo folder.
func (e *env) repoPathOrDefault() string {
	if e.repoPath == "" {
		return node.DefaultRepoPath()
	}
	return e.repoPath
}

// emit prints v as indented JSON with --json, and calls human otherwise.
func (e *env) emit(v any, human func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(e.out)
	return nil
}

// isTerminal reports whether w is a terminal (progress bars only go to terminals).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewMeshnode returns the meshnode root command.
func NewMeshnode(out, errOut io.Writer) *cobra.Command {
	e := &env{out: out, err: errOut, catalog: dataset.DefaultCatalog()}
	root := &cobra.Command{
		Use:   "meshnode",
		Short: "A node of a peer-to-peer mesh of micro-experts",
		Long: `meshnode turns this machine into a node of a mesh of micro-experts: small neural
networks that it trains, stores by content address, runs and (with a daemon) shares.`,
		Example: `  meshnode init
  meshnode expert train --dataset fashion-mnist --hidden 100 --epochs 8
  meshnode expert list
  meshnode query --expert fashion-mnist --input shoe.png`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVar(&e.repoPath, "repo", "", "repo folder (default $MESHNODE_PATH or ~/.meshnode)")
	root.PersistentFlags().BoolVar(&e.json, "json", false, "print JSON for scripts")
	root.AddCommand(initCmd(e), configCmd(e), idCmd(e), daemonCmd(e), statusCmd(e), peersCmd(e), expertCmd(e), queryCmd(e), dataCmd(e), analyzeCmd(e), testdataCheckpointCmd(e))
	root.AddCommand(monitorCmd(e), metricsCmd(e), dashboardCmd(e), trainGroupCmd(e), blobCmd(e), marketCmd(e))
	root.AddCommand(validateCmd(e))
	root.AddCommand(distillCmd(e), generateCmd(e))
	return root
}

// NewAnalyzer returns the kimi-analyzer root command: the offline toolkit alone.
func NewAnalyzer(out, errOut io.Writer) *cobra.Command {
	e := &env{out: out, err: errOut, catalog: dataset.DefaultCatalog()}
	root := &cobra.Command{
		Use:           "kimi-analyzer",
		Short:         "Offline toolkit for making micro-experts from large mixture-of-experts models",
		Example:       `  kimi-analyzer config --preset comprehensive --output analyzer.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().BoolVar(&e.json, "json", false, "print JSON for scripts")
	root.AddCommand(configCmd(e), analyzeCmd(e), testdataCheckpointCmd(e))
	root.AddCommand(validateCmd(e))
	root.AddCommand(distillCmd(e), generateCmd(e))
	return root
}

// Main runs a root command on os.Args and returns the process exit code.
func Main(root *cobra.Command) int {
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", root.Name(), err)
		return 1
	}
	return 0
}
