// Command kimi-analyzer is meshnode's offline toolkit for making micro-experts from large
// mixture-of-experts checkpoints. It shares its command code with meshnode.
package main

import (
	"os"

	"github.com/meshnode/meshnode/cmd/internal/cli"
)

func main() {
	os.Exit(cli.Main(cli.NewAnalyzer(os.Stdout, os.Stderr)))
}
