package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
)

func daemonCmd(e *env) *cobra.Command {
	var o daemon.Options
	var logLevel string
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run this node: join the mesh, advertise served experts, answer the local API",
		Long: `Run the node until SIGINT or SIGTERM. It listens on the config's mesh addresses (or
--listen), dials the bootstrap peers (config and --bootstrap), finds LAN peers by mDNS unless the
config turns it off, advertises the experts it serves, and keeps the table of everyone else's.
Commands such as 'meshnode status' talk to it through its API on 127.0.0.1.
A graceful stop withdraws this node's adverts from the mesh at once.`,
		Example: `  meshnode daemon
  meshnode daemon --repo /tmp/n2 --bootstrap /ip4/127.0.0.1/tcp/4101/p2p/12D3KooW...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			if err := checkDaemonOptions(o); err != nil {
				return err
			}
			o.Logger = slog.New(slog.NewTextHandler(e.err, &slog.HandlerOptions{Level: level}))
			r, err := e.repo()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d, err := daemon.Start(ctx, r, o)
			if err != nil {
				r.Close()
				return err
			}
			info := api.IDInfo{PeerID: d.Mesh.Host.ID().String(), Addrs: d.Mesh.Addrs()}
			ready := struct {
				api.IDInfo
				API string `json:"api"`
			}{info, d.APIURL()}
			if err := e.emit(ready, func(w io.Writer) {
				fmt.Fprintf(w, "daemon ready: peer %s\nAPI %s\n", info.PeerID, d.APIURL())
				for _, a := range info.Addrs {
					fmt.Fprintf(w, "listening on %s\n", a)
				}
			}); err != nil {
				d.Close()
				return err
			}
			<-ctx.Done()
			o.Logger.Info("shutting down: withdrawing adverts")
			return d.Close()
		},
	}
	c.Flags().StringArrayVar(&o.Listen, "listen", nil, "multiaddr to listen on (repeatable; replaces the config's)")
	c.Flags().StringArrayVar(&o.Bootstrap, "bootstrap", nil, "peer to dial at start, /ip4/.../p2p/<id> (repeatable)")
	c.Flags().StringVar(&o.APIListen, "api", "", "API address, 127.0.0.1:PORT or [::1]:PORT (default: the config's)")
	c.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return c
}

// checkDaemonOptions refuses flags the config file would be refused for: --api passes the
// same loopback-only check as api.listen, before anything starts.
func checkDaemonOptions(o daemon.Options) error {
	if o.APIListen != "" {
		if err := node.CheckAPIListen(o.APIListen); err != nil {
			return fmt.Errorf("--api %s: %w", o.APIListen, err)
		}
	}
	return nil
}

// client connects to the repo's running daemon.
func (e *env) client() (*api.Client, error) { return api.DaemonClient(e.repoPathOrDefault()) }

func statusCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the running daemon: peers, served experts, remote table",
		Example: `  meshnode status --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var st api.StatusInfo
			if err := c.Get(cmd.Context(), api.PathStatus, &st); err != nil {
				return err
			}
			return e.emit(st, func(w io.Writer) {
				fmt.Fprintf(w, "peer %s, up %.0fs, reachability %s\n%d peers connected, %d experts hosted, %d served, %d remote adverts\n",
					st.PeerID, st.UptimeSeconds, st.Reachability, st.Peers, st.Hosted, len(st.Served), st.RemoteAdverts)
				for _, s := range st.Served {
					fmt.Fprintf(w, "serving %s %s (%s)\n", s.ID, s.Name, strings.Join(s.Domains, ","))
				}
			})
		},
	}
}

func peersCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "peers",
		Short:   "List the peers the daemon is connected to",
		Example: `  meshnode peers`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var peers []api.PeerInfo
			if err := c.Get(cmd.Context(), api.PathPeers, &peers); err != nil {
				return err
			}
			return e.emit(peers, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PEER\tLATENCY\tVIA\tADDRESS")
				for _, p := range peers {
					via := "direct"
					if p.Relayed {
						via = "relay"
					}
					fmt.Fprintf(tw, "%s\t%.2fms\t%s\t%s\n", p.ID, p.LatencyMS, via, strings.Join(p.Addrs, " "))
				}
				tw.Flush()
			})
		},
	}
}

func serveCmd(e *env, unserve bool) *cobra.Command {
	use, short, path := "serve ID|NAME", "Advertise a hosted expert to the mesh (through the daemon)", api.PathServe
	if unserve {
		use, short, path = "unserve ID|NAME", "Stop advertising an expert; peers drop it at once", api.PathUnserve
	}
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  meshnode expert " + strings.Fields(use)[0] + " fashion",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var out any
			if err := c.Post(cmd.Context(), path, api.ServeRequest{Ref: args[0]}, &out); err != nil {
				return err
			}
			return e.emit(out, func(w io.Writer) {
				if unserve {
					fmt.Fprintf(w, "stopped serving %s; its withdrawal is on the mesh\n", args[0])
				} else {
					fmt.Fprintf(w, "serving %s; its advert is on the mesh\n", args[0])
					if m, ok := out.(map[string]any); ok && m["exposure"] != nil {
						fmt.Fprintf(w, "exposure: %v\n", m["exposure"])
					}
				}
			})
		},
	}
}

func dashboardCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "dashboard",
		Short: "Print the address of the running daemon's dashboard (open it in a browser)",
		Long: `Print the dashboard's URL: a page served by the daemon on 127.0.0.1 showing peers, local and
remote experts and query traffic, with a form to send a query and see who answered. The API token
rides in the URL's fragment, which the browser never sends to any server.`,
		Example: `  xdg-open "$(meshnode dashboard)"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := e.dashboardURL()
			if err != nil {
				return err
			}
			return e.emit(map[string]string{"url": url}, func(w io.Writer) { fmt.Fprintln(w, url) })
		},
	}
}

func (e *env) dashboardURL() (string, error) {
	p := e.repoPathOrDefault()
	if _, err := api.DaemonClient(p); err != nil {
		return "", err
	}
	base, err := os.ReadFile(filepath.Join(p, api.APIFile))
	if err != nil {
		return "", err
	}
	r, err := node.Open(p)
	if err != nil {
		return "", err
	}
	tok, err := r.Token()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(base)) + daemon.PathUI + "#token=" + tok, nil
}
