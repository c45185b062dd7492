// Command meshnode runs a node of the micro-expert mesh. See `meshnode --help`.
package main

import (
	"os"

	"github.com/meshnode/meshnode/cmd/internal/cli"
)

func main() {
	os.Exit(cli.Main(cli.NewMeshnode(os.Stdout, os.Stderr)))
}
