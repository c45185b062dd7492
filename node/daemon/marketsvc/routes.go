package marketsvc

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon/internal/httpx"
)

// Handle turns a function answering a request with a value or an error into the API's
// handler: the value as JSON, or the error with the status and code of its kind (the API's
// handle).
type Handle = httpx.Handle

// maxBody bounds a market request's body (1 MiB), but an import's (api.MaxImportBytes).
const maxBody = 1 << 20

// Routes registers the market API on mux: publish, list, buy, review and unlist listings,
// import and grant ledger entries, and this node's balance, history, refused keys and book.
func (m *Service) Routes(mux *http.ServeMux, handle Handle) {
	post := func(path string, f func(*http.Request) (any, error)) { mux.HandleFunc("POST "+path, handle(f)) }
	get := func(path string, f func(*http.Request) (any, error)) { mux.HandleFunc("GET "+path, handle(f)) }
	post(api.PathMarketPublish, func(r *http.Request) (any, error) {
		var req api.PublishRequest
		if err := httpx.DecodeBody(r, &req, maxBody); err != nil {
			return nil, err
		}
		return m.Publish(r.Context(), req)
	})
	get(api.PathMarketListings, m.list)
	post(api.PathMarketBuy, func(r *http.Request) (any, error) {
		var req api.BuyRequest
		if err := httpx.DecodeBody(r, &req, maxBody); err != nil {
			return nil, err
		}
		if req.Listing == "" && len(req.Offer) == 0 {
			return nil, api.ErrBadRequest.Wrap(errors.New("buy: name a listing ID or give a signed offer"))
		}
		timeout := 60 * time.Second
		if req.TimeoutMS > 0 {
			timeout = time.Duration(req.TimeoutMS) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		return m.Buy(ctx, req)
	})
	get(api.PathMarketBalance, func(*http.Request) (any, error) { return m.balance(), nil })
	get(api.PathMarketHistory, func(*http.Request) (any, error) { return m.history(), nil })
	get(api.PathMarketRefused, func(*http.Request) (any, error) { return m.refused(), nil })
	get(api.PathMarketBook, func(*http.Request) (any, error) { return m.bookView(), nil })
	post(api.PathMarketReview, func(r *http.Request) (any, error) {
		var req api.ReviewRequest
		if err := httpx.DecodeBody(r, &req, maxBody); err != nil {
			return nil, err
		}
		return m.Review(r.Context(), req)
	})
	post(api.PathMarketImport, func(r *http.Request) (any, error) {
		var req api.ImportRequest
		if err := httpx.DecodeBody(r, &req, api.MaxImportBytes); err != nil {
			return nil, err
		}
		return m.Import(r.Context(), req.Entries)
	})
	post(api.PathMarketUnlist, func(r *http.Request) (any, error) {
		var req api.UnlistRequest
		if err := httpx.DecodeBody(r, &req, maxBody); err != nil {
			return nil, err
		}
		return m.Unlist(r.Context(), req)
	})
	post(api.PathMarketGrant, func(r *http.Request) (any, error) {
		var req api.GrantRequest
		if err := httpx.DecodeBody(r, &req, maxBody); err != nil {
			return nil, err
		}
		return m.Grant(r.Context(), req)
	})
}
