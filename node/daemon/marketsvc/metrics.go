package marketsvc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count the market's traffic and expose the ledger's size and this node's
// balance.
type metrics struct {
	sent         *prometheus.CounterVec
	received     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	purchases    *prometheus.CounterVec
	sales        *prometheus.CounterVec
	doubleSpends prometheus.Counter
	denied       prometheus.Counter
	syncs        *prometheus.CounterVec
	synced       prometheus.Counter
	syncBytes    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, m *Service) *metrics {
	mm := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_market_messages_sent_total",
			Help: "Messages this node published on the market topic, by kind."}, []string{"kind"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_market_messages_received_total",
			Help: "Market messages from peers that passed validation, by kind."}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_market_messages_rejected_total",
			Help: "Market messages the validator rejected, by reason."}, []string{"reason"}),
		purchases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_market_purchases_total",
			Help: "Purchases this node made, by outcome (ok, rejected before paying, failed after paying)."}, []string{"outcome"}),
		sales: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_market_sales_total",
			Help: "Purchase requests this node answered as a seller, by outcome."}, []string{"outcome"}),
		doubleSpends: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_ledger_double_spends_total",
			Help: "Keys this node caught or learnt of double spending."}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_market_blocks_denied_total",
			Help: "Block requests for a paid expert refused to peers without a receipt."}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_ledger_syncs_total",
			Help: "Ledger syncs this node ran with a peer, by result."}, []string{"result"}),
		synced: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_ledger_synced_entries_total",
			Help: "Ledger entries this node fetched by sync."}),
		syncBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "meshnode_ledger_sync_received_bytes_total",
			Help: "Bytes of ledger sync answers this node received (requests and framing apart)."}),
	}
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshnode_ledger_entries",
		Help: "Ledger entries in this node's book (all chains)."}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(m.book.Len())
	})
	balance := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshnode_ledger_balance_credits",
		Help: "This node's balance as its own book computes it."}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(m.book.Balance(m.self))
	})
	listings := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshnode_market_listings",
		Help: "Listings this node keeps (live or expired)."}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.listings))
	})
	reg.MustRegister(mm.sent, mm.received, mm.rejected, mm.purchases, mm.sales, mm.doubleSpends, mm.denied, mm.syncs, mm.synced, mm.syncBytes, entries, balance, listings)
	return mm
}
