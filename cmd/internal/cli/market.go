package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshnode/meshnode/market/ledger"
	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/node/api"
)

func marketCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "market",
		Short: "Sell and buy experts: signed listings, payments on a signed ledger, receipts, reviews",
		Long: `The market runs in the daemon. A listing is a seller's signed offer, spread by gossip and
kept by every node. A purchase is a payment entry signed by the buyer, answered by a receipt
the seller countersigns; the seller's bitswap then serves the expert's blocks to the buyer
(and to no peer without a receipt), and the buyer verifies them against their CIDs.`,
		Example: `  meshnode market publish iris --price 25 --licence "CC-BY-4.0" --expires 720h
  meshnode market list --domain iris --max-price 50 --min-accuracy 0.9
  meshnode market buy baguqeera...
  meshnode market balance
  meshnode market history`,
	}
	c.AddCommand(marketPublishCmd(e), marketListCmd(e), marketBuyCmd(e), marketBalanceCmd(e), marketHistoryCmd(e),
		marketReviewCmd(e), marketOfferCmd(e), marketImportCmd(e), marketRefusedCmd(e), marketGrantCmd(e), marketBookCmd(e), marketUnlistCmd(e))
	return c
}

// marketPost calls the daemon and prints the answer with --json, or human otherwise.
func marketPost[T any](e *env, cmd *cobra.Command, path string, body any, human func(io.Writer, T)) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var out T
	if err := c.Post(cmd.Context(), path, body, &out); err != nil {
		return err
	}
	return e.emit(out, func(w io.Writer) { human(w, out) })
}

func marketGet[T any](e *env, cmd *cobra.Command, path string, human func(io.Writer, T)) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var out T
	if err := c.Get(cmd.Context(), path, &out); err != nil {
		return err
	}
	return e.emit(out, func(w io.Writer) { human(w, out) })
}

func marketPublishCmd(e *env) *cobra.Command {
	var req api.PublishRequest
	var expires time.Duration
	c := &cobra.Command{
		Use:   "publish ID",
		Short: "Offer a stored expert (ID or name) for a price in credits (0: free)",
		Example: `  meshnode market publish iris --price 25
  meshnode market publish bafyrei... --price 0 --licence "MIT" --expires 24h --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("price") {
				return fmt.Errorf("market publish: --price is required (0 for a free listing)")
			}
			if expires < 0 {
				return fmt.Errorf("market publish: --expires %s is negative", expires)
			}
			req.Ref, req.ExpiresMS = args[0], expires.Milliseconds()
			return marketPost(e, cmd, api.PathMarketPublish, req, func(w io.Writer, v api.ListingView) {
				fmt.Fprintf(w, "listed %s (%s) for %d credits until %s\nlisting %s\n", v.Name, v.Expert, v.Price,
					time.UnixMilli(v.Expires).UTC().Format(time.RFC3339), v.ID)
			})
		},
	}
	c.Flags().Uint64Var(&req.Price, "price", 0, "price in credits (required; 0 is free)")
	c.Flags().StringVar(&req.Licence, "licence", "", "licence text the buyer accepts")
	durationFlag(c.Flags(), &expires, "expires", 0, "lifetime of the listing (default: the config's market.default_expiry)")
	return c
}

func marketListCmd(e *env) *cobra.Command {
	var domain string
	var maxPrice int64
	var minAcc float64
	c := &cobra.Command{
		Use:   "list",
		Short: "Show live listings with their evaluated results and reviews, cheapest first",
		Example: `  meshnode market list
  meshnode market list --domain coding --max-price 100 --min-accuracy 0.8 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if domain != "" {
				q.Set("domain", domain)
			}
			if maxPrice >= 0 {
				q.Set("max_price", strconv.FormatInt(maxPrice, 10))
			}
			if minAcc >= 0 {
				q.Set("min_accuracy", strconv.FormatFloat(minAcc, 'g', -1, 64))
			}
			return marketGet(e, cmd, api.PathMarketListings+"?"+q.Encode(), func(w io.Writer, ls []api.ListingView) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "LISTING\tNAME\tDOMAINS\tPRICE\tACCURACY\tREVIEWS\tSELLER")
				for _, l := range ls {
					acc := "-"
					if a, ok := l.Accuracy(); ok {
						acc = fmt.Sprintf("%.3f", a)
					}
					revs := fmt.Sprintf("%d", len(l.Reviews))
					if len(l.Reviews) > 0 {
						revs += fmt.Sprintf(" (mean %.3f)", l.ReviewMean)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, l.Name, strings.Join(l.Domains, ","), l.Price, acc, revs, l.Seller)
				}
				tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&domain, "domain", "", "only listings of this domain tag")
	c.Flags().Int64Var(&maxPrice, "max-price", -1, "only listings at most this price")
	c.Flags().Float64Var(&minAcc, "min-accuracy", -1, "only listings whose evaluated accuracy is at least this")
	return c
}

func marketBuyCmd(e *env) *cobra.Command {
	var offer string
	var timeoutMS int
	c := &cobra.Command{
		Use:   "buy LISTING",
		Short: "Pay for a listing, get the seller's receipt, then fetch, verify and install the expert",
		Long: `Buy pays the listing's price with a payment entry signed by this node, written to its ledger
before it is sent; the seller answers with a countersigned receipt. Running the same buy again
never pays twice: it resends the same payment, or fetches the expert again.
A listing received out of band (a file from 'market offer') is bought with --offer.`,
		Example: `  meshnode market buy baguqeera...
  meshnode market buy --offer offer.json --json`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.BuyRequest
			req.TimeoutMS = timeoutMS
			if len(args) == 1 {
				req.Listing = args[0]
			}
			if offer != "" {
				b, err := os.ReadFile(offer)
				if err != nil {
					return fmt.Errorf("market buy: %w", err)
				}
				req.Offer = []byte(strings.TrimSpace(string(b)))
			}
			if req.Listing == "" && req.Offer == nil {
				return fmt.Errorf("market buy: name a LISTING or give --offer FILE")
			}
			return marketPost(e, cmd, api.PathMarketBuy, req, func(w io.Writer, r api.BuyResult) {
				if r.Price == 0 {
					fmt.Fprintf(w, "free listing: installed %s (%s)\n", r.Expert, r.Fetch.Name)
					return
				}
				fmt.Fprintf(w, "paid %d credits to %s (payment %s, receipt %s)\ninstalled %s (%s); balance %d\n",
					r.Price, r.Seller, r.PaymentID, r.ReceiptID, r.Expert, r.Fetch.Name, r.Balance)
			})
		},
	}
	c.Flags().StringVar(&offer, "offer", "", "a signed listing file to buy from (instead of the market table)")
	c.Flags().IntVar(&timeoutMS, "timeout-ms", 60000, "give up on the purchase after this long")
	return c
}

func marketBalanceCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "balance",
		Short:   "Show this node's balance as its ledger computes it",
		Example: `  meshnode market balance --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return marketGet(e, cmd, api.PathMarketBalance, func(w io.Writer, b api.BalanceInfo) {
				fmt.Fprintf(w, "%d credits (peer %s; %d own entries, %d payments awaiting a receipt; %d entries in the book)\n",
					b.Balance, b.PeerID, b.Chain, b.Pending, b.Entries)
				if b.Refused {
					fmt.Fprintln(w, "this key is refused: the mesh holds a proof that it double spent")
				}
			})
		},
	}
}

func marketHistoryCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "history",
		Short:   "List every ledger entry involving this node: payments both ways, receipts, grants",
		Example: `  meshnode market history --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return marketGet(e, cmd, api.PathMarketHistory, func(w io.Writer, h []api.HistoryItem) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tDIRECTION\tKIND\tAUTHOR#SEQ\tAMOUNT\tCOUNTERPARTY\tLISTING\tENTRY")
				for _, it := range h {
					other := it.To
					if it.Direction == "in" || it.Direction == "receipt-in" {
						other = it.Author
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s#%d\t%d\t%s\t%s\t%s\n", time.UnixMilli(it.Time).UTC().Format(time.RFC3339),
						it.Direction, it.Kind, short(it.Author), it.Seq, it.Amount, short(other), short(it.Listing), it.ID)
				}
				tw.Flush()
			})
		},
	}
}

func short(s string) string {
	if len(s) > 14 {
		return s[:6] + "…" + s[len(s)-6:]
	}
	return s
}

func marketReviewCmd(e *env) *cobra.Command {
	var req api.ReviewRequest
	c := &cobra.Command{
		Use:   "review LISTING",
		Short: "Evaluate a bought expert on a data set and publish the signed result as a review",
		Example: `  meshnode market review baguqeera... --dataset iris --rating 4 --text "as advertised"
  meshnode market review baguqeera... --dataset fashion-mnist --limit 2000 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Dataset == "" {
				return fmt.Errorf("market review: --dataset is required (the review carries a measured evaluation)")
			}
			req.Listing = args[0]
			return marketPost(e, cmd, api.PathMarketReview, req, func(w io.Writer, r listing.Review) {
				fmt.Fprintf(w, "reviewed %s: accuracy %.4f on %d samples of %s\n", r.Listing, r.Accuracy, r.Samples, r.Dataset)
			})
		},
	}
	c.Flags().StringVar(&req.Dataset, "dataset", "", "data set to evaluate on (a catalog name)")
	c.Flags().IntVar(&req.Limit, "limit", 0, "evaluate on at most this many samples (0: all)")
	c.Flags().IntVar(&req.Rating, "rating", 0, "rating 1 to 5 (0: none)")
	c.Flags().StringVar(&req.Text, "text", "", "a short comment")
	return c
}

func marketOfferCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "offer LISTING",
		Short:   "Print a listing's signed canonical JSON, to hand to a buyer out of band (market buy --offer)",
		Example: `  meshnode market offer baguqeera... > offer.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var ls []api.ListingView
			if err := c.Get(cmd.Context(), api.PathMarketListings, &ls); err != nil {
				return err
			}
			for _, l := range ls {
				if l.ID == args[0] {
					_, err := fmt.Fprintf(e.out, "%s\n", l.Listing.Encode())
					return err
				}
			}
			return fmt.Errorf("market offer: no live listing %s", args[0])
		},
	}
}

func marketImportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Add signed ledger entries (a JSON array, in chain order) to this node's book and spread them",
		Example: `  meshnode market import entries.json
  meshnode --json market history > entries.json   (on another node)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("market import: %w", err)
			}
			entries, err := listing.DecodeEntries(b)
			if err != nil {
				return fmt.Errorf("market import %s: %w", args[0], err)
			}
			req := api.ImportRequest{Entries: entries}
			if body, _ := json.Marshal(req); len(body) > api.MaxImportBytes { // entries and strings, cannot fail
				return fmt.Errorf("market import %s: %d bytes of entries, over the daemon's limit of %d MiB: split the file",
					args[0], len(body), api.MaxImportBytes>>20)
			}
			return marketPost(e, cmd, api.PathMarketImport, req, func(w io.Writer, r api.ImportResult) {
				fmt.Fprintf(w, "added %d entries (%d already held)\n", r.Added, r.Known)
			})
		},
	}
}

func marketRefusedCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "refused",
		Short:   "List keys caught double spending, with the two entries that prove it",
		Example: `  meshnode market refused --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return marketGet(e, cmd, api.PathMarketRefused, func(w io.Writer, rs []api.RefusedKey) {
				if len(rs) == 0 {
					fmt.Fprintln(w, "no double spending known")
				}
				for _, r := range rs {
					fmt.Fprintf(w, "%s signed two entries #%d: %s and %s\n", r.Author, r.Seq, r.A, r.B)
				}
			})
		},
	}
}

func marketUnlistCmd(e *env) *cobra.Command {
	var req api.UnlistRequest
	c := &cobra.Command{
		Use:   "unlist LISTING",
		Short: "Withdraw one of this node's listings: no new sales; receipts already given stay valid",
		Long: `The seller's signed withdrawal spreads by gossip: nodes stop listing the offer and refuse to
buy it. With --free the expert's paywall lifts: this node serves its blocks to anyone. Without
it, only those who already bought the expert can fetch it from this node.`,
		Example: `  meshnode market unlist baguqeera...
  meshnode market unlist baguqeera... --free --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Listing = args[0]
			return marketPost(e, cmd, api.PathMarketUnlist, req, func(w io.Writer, v api.ListingView) {
				then := "only its buyers can fetch the expert from this node"
				if req.Free {
					then = "anyone can fetch the expert from this node"
				}
				fmt.Fprintf(w, "withdrew %s (%s): %s\n", v.ID, v.Name, then)
			})
		},
	}
	c.Flags().BoolVar(&req.Free, "free", false, "lift the paywall: serve the expert to anyone from now on")
	return c
}

func marketBookCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "book",
		Short: "Every key's balance as this node's ledger computes it",
		Long: `The book is a function of the entries it holds, whatever order they came in: two nodes
that hold the same entries print the same book. Unfunded counts a key's payments its balance
did not cover (they move nothing); refused is the sequence a key is refused from for double
spending (its entries before it stand).`,
		Example: `  meshnode market book
  meshnode market book --json | jq '.keys[] | select(.refused > 0)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return marketGet(e, cmd, api.PathMarketBook, func(w io.Writer, v api.BookView) {
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tBALANCE\tCHAIN\tUNFUNDED\tREFUSED FROM")
				for _, k := range v.Keys {
					refused := "-"
					if k.Refused > 0 {
						refused = strconv.FormatUint(k.Refused, 10)
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", k.Key, k.Balance, k.Chain, k.Unfunded, refused)
				}
				tw.Flush()
				fmt.Fprintf(w, "%d entries", v.Entries)
				if v.Waiting > 0 {
					fmt.Fprintf(w, ", %d waiting for earlier ones", v.Waiting)
				}
				fmt.Fprintln(w)
			})
		},
	}
}

func marketGrantCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "grant PEER AMOUNT",
		Short:   "Create credits for a peer (only on a node whose key is in market.issuers)",
		Example: `  meshnode market grant 12D3KooW... 500`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil || amount == 0 {
				return fmt.Errorf("market grant: amount %q must be a positive integer", args[1])
			}
			return marketPost(e, cmd, api.PathMarketGrant, api.GrantRequest{To: args[0], Amount: amount}, func(w io.Writer, g ledger.Entry) {
				fmt.Fprintf(w, "granted %d credits to %s (entry %s)\n", g.Amount, g.To, g.ID())
			})
		},
	}
}
