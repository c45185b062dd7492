package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/meshnode/meshnode/node/api"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func blobCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "blob",
		Short: "Content-addressed blobs: put, get (from any provider), pin, unpin, gc",
		Example: `  meshnode blob put model.safetensors
  meshnode blob get bafy... --output copy.bin`,
	}
	var timeoutMS int
	var output string
	var private bool
	put := &cobra.Command{
		Use:   "put FILE",
		Short: "Import a file as a UnixFS blob and pin it; unless --private, serve it to anyone and announce it",
		Example: `  meshnode blob put data.bin --json
  meshnode blob put notes.txt --private   # kept here, never served to peers`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			req := api.BlobPutRequest{Path: args[0], Private: private}
			update, finish := e.byteProgress("storing")
			if update != nil {
				req.Progress = func(p api.BlobPutProgress) { update(p.Bytes, p.Total) }
			}
			b, err := ops.PutBlob(cmd.Context(), req)
			finish()
			if err != nil {
				return err
			}
			return e.emit(b, func(w io.Writer) {
				if b.Private {
					fmt.Fprintf(w, "%s  %d bytes, pinned, private (not served to peers)\n", b.CID, b.Size)
					return
				}
				fmt.Fprintf(w, "%s  %d bytes, pinned, public (served and announced while the daemon runs)\n", b.CID, b.Size)
			})
		},
	}
	put.Flags().BoolVar(&private, "private", false, "keep the blob local: never serve it to peers nor announce it")
	get := &cobra.Command{
		Use:   "get CID",
		Short: "Fetch a blob from any provider (verified against its CID) and write it out",
		Example: `  meshnode blob get bafy... --output model.safetensors
  meshnode blob get bafy... > copy.bin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			info, err := e.fetch(cmd.Context(), c, api.PathBlobFetch, args[0], timeoutMS)
			if err != nil {
				return err
			}
			if output == "" && e.json {
				return e.emit(info, nil)
			}
			w := e.out
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return fmt.Errorf("blob get: %w", err)
				}
				defer f.Close()
				w = f
			}
			if err := c.Stream(cmd.Context(), api.PathBlobCat+"?cid="+url.QueryEscape(args[0]), w); err != nil {
				return err
			}
			if output != "" {
				return e.emit(info, func(w io.Writer) {
					fmt.Fprintf(w, "%s  %d bytes → %s (fetched %d bytes in %.2fs, %.1f MiB/s)\n", info.CID, info.Size, output, info.Received, info.Seconds, info.MiBPerSecond)
				})
			}
			return nil
		},
	}
	get.Flags().StringVar(&output, "output", "", "file to write (default stdout)")
	get.Flags().IntVar(&timeoutMS, "timeout-ms", 60000, "give up when no block arrives for this long")
	simple := func(use, short, done string, op func(api.StoreOps, context.Context, string) error) *cobra.Command {
		return &cobra.Command{
			Use:     use + " CID",
			Short:   short,
			Example: "  meshnode blob " + use + " bafy...",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ops, r, err := e.storeOps()
				if err != nil {
					return err
				}
				defer r.Close()
				if err := op(ops, cmd.Context(), args[0]); err != nil {
					return err
				}
				return e.emit(map[string]string{done: args[0]}, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", done, args[0]) })
			},
		}
	}
	gc := &cobra.Command{
		Use:     "gc",
		Short:   "Delete blocks that neither a pinned blob nor a hosted expert needs",
		Example: `  meshnode blob gc --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops, r, err := e.storeOps()
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := ops.GCBlobs(cmd.Context())
			if err != nil {
				return err
			}
			return e.emit(rep, func(w io.Writer) {
				fmt.Fprintf(w, "removed %d blocks (%d bytes), kept %d\n", rep.Removed, rep.Bytes, rep.Kept)
			})
		},
	}
	c.AddCommand(put, get, simple("pin", "Keep a held blob through gc", "pinned", api.StoreOps.PinBlob),
		simple("unpin", "Let gc remove a blob", "unpinned", api.StoreOps.UnpinBlob), gc)
	return c
}

func expertFetchCmd(e *env) *cobra.Command {
	var timeoutMS int
	c := &cobra.Command{
		Use:     "fetch ID",
		Short:   "Fetch an expert (manifest and weights) from the mesh, verify both and install it",
		Example: `  meshnode expert fetch bafyrei...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			b, err := e.fetch(cmd.Context(), c, api.PathExpertFetch, args[0], timeoutMS)
			if err != nil {
				return err
			}
			return e.emit(b, func(w io.Writer) {
				fmt.Fprintf(w, "installed %s (%s): weights %d bytes fetched in %.2fs\n", b.CID, b.Name, b.Size, b.Seconds)
			})
		},
	}
	c.Flags().IntVar(&timeoutMS, "timeout-ms", 60000, "give up when no block arrives for this long")
	return c
}

// fetch asks the daemon to fetch a blob or an expert. On a terminal (without --json) it shows
// a progress bar with bytes and rate while the daemon streams its progress.
func (e *env) fetch(ctx context.Context, c *api.Client, path, id string, timeoutMS int) (api.BlobInfo, error) {
	req := map[string]any{"cid": id, "timeout_ms": timeoutMS}
	var info api.BlobInfo
	if e.json || !isTerminal(e.err) {
		err := c.Post(ctx, path, req, &info)
		return info, err
	}
	req["progress"] = true
	update, finish := e.byteProgress("fetching")
	rep, err := api.RunJob[api.FetchProgress, api.BlobInfo](ctx, c, path, req, func(p api.FetchProgress) { update(p.Bytes, p.Total) })
	finish()
	if err != nil {
		return info, err
	}
	return *rep, nil
}

// byteProgress is a bar of bytes on a terminal (nil update and a no-op finish otherwise, or
// with --json). A new total starts a new bar (an expert is two blobs: manifest, weights).
func (e *env) byteProgress(desc string) (update func(done, total int64), finish func()) {
	if e.json || !isTerminal(e.err) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	var barTotal int64
	update = func(done, total int64) {
		if total == 0 {
			return
		}
		if bar == nil || barTotal != total {
			if bar != nil {
				_ = bar.Finish()
			}
			barTotal = total
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(e.err), progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30), progressbar.OptionSetDescription(desc), progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(100*time.Millisecond))
		}
		_ = bar.Set64(done)
	}
	return update, func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}
