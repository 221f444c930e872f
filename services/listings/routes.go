package listings

import (
	"log/slog"
	"net/http"
	"time"
)

// routes is the whole HTTP surface of market-listings.
func routes(mux *http.ServeMux, store *Store, log *slog.Logger, now func() time.Time) {
	mux.Handle("GET /api/v1/listings/openapi.yaml", handleOpenAPI())
	mux.Handle("GET /api/v1/listings/cities", handleCities(store, log))
	mux.Handle("GET /api/v1/listings/cities/{city}", handleCity(store, log))
	mux.Handle("GET /api/v1/listings/cities/{city}/today", handleToday(store, log, now))
	mux.Handle("GET /api/v1/listings/cities/{city}/market-days", handleMarketDays(store, log, now))
	mux.Handle("GET /api/v1/listings/market-days/{id}", handleMarketDay(store, log))
	mux.Handle("POST /api/v1/listings/market-days/{id}/applications", handleApply(store, log, now))
	mux.Handle("POST /api/v1/listings/vendors", handleCreateVendor(store, log))
	mux.Handle("GET /api/v1/listings/vendors/{id}", handleVendor(store, log))
}
