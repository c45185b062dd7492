package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
)

func initCmd(e *env) *cobra.Command {
	var preset, configFile string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repo folder: identity key, config, database and API token",
		Example: `  meshnode init
  meshnode init --repo /tmp/node1 --preset fast`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := e.repoPathOrDefault()
			r, err := node.Init(cmd.Context(), p, node.InitOptions{Preset: preset, ConfigFile: configFile})
			if err != nil {
				return err
			}
			defer r.Close()
			res := struct {
				Repo   string `json:"repo"`
				PeerID string `json:"peer_id"`
				Preset string `json:"preset"`
			}{p, r.Identity.ID(), r.Config.Preset}
			return e.emit(res, func(w io.Writer) {
				fmt.Fprintf(w, "initialised %s\npeer ID %s (preset %s)\n", res.Repo, res.PeerID, res.Preset)
				if r.Config.Training.UseGPU {
					fmt.Fprintln(w, "note: the gpu preset computes on the CPU: meshnode has no GPU backend")
				}
			})
		},
	}
	c.Flags().StringVar(&preset, "preset", "", "config preset: "+strings.Join(node.Presets(), ", ")+" (default development)")
	c.Flags().StringVar(&configFile, "config", "", "start from this config file instead of a preset")
	return c
}

func configCmd(e *env) *cobra.Command {
	var preset, output string
	c := &cobra.Command{
		Use:     "config",
		Short:   "Write the config file of a preset",
		Example: `  meshnode config --preset production --output node.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.Preset(preset)
			if err != nil {
				return err
			}
			b, err := cfg.Marshal()
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = e.out.Write(b)
				return err
			}
			if err := os.WriteFile(output, b, 0o644); err != nil {
				return fmt.Errorf("write config: %w", err)
			}
			return e.emit(map[string]string{"preset": preset, "output": output}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote the %s preset to %s\n", preset, output)
				if cfg.Training.UseGPU {
					fmt.Fprintln(w, "note: meshnode computes on the CPU (gonum); use_gpu only records the wish")
				}
			})
		},
	}
	c.Flags().StringVar(&preset, "preset", "development", "preset: "+strings.Join(node.Presets(), ", "))
	c.Flags().StringVar(&output, "output", "", "file to write (default stdout)")
	return c
}

func idCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "id",
		Short:   "Print this node's peer ID (and, with a daemon running, its addresses)",
		Example: `  meshnode id --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var info api.IDInfo
			if c, err := e.client(); err == nil {
				if err := c.Get(cmd.Context(), api.PathID, &info); err != nil {
					return err
				}
			} else {
				r, err := e.repo()
				if err != nil {
					return err
				}
				defer r.Close()
				info = api.IDInfo{PeerID: r.Identity.ID(), Addrs: []string{}}
			}
			return e.emit(info, func(w io.Writer) {
				fmt.Fprintln(w, info.PeerID)
				for _, a := range info.Addrs {
					fmt.Fprintln(w, a)
				}
			})
		},
	}
}
