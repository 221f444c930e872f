package listings

import (
	"log/slog"
	"net/http"
	"time"
)

// routes is the whole HTTP surface of market-listings.
func routes(mux *http.ServeMux, store *Store, log *slog.Logger, now func() time.Time) {
	idem := idempotencyKeys(store, log) // Idempotency-Key on POSTs
	mux.Handle("GET /api/v1/listings/openapi.yaml", handleOpenAPI())
	mux.Handle("GET /api/v1/listings/cities", handleCities(store, log))
	mux.Handle("GET /api/v1/listings/cities/{city}", handleCity(store, log))
	mux.Handle("GET /api/v1/listings/cities/{city}/today", handleToday(store, log, now))
	mux.Handle("GET /api/v1/listings/cities/{city}/market-days", handleMarketDayRange(store, log, now))
	mux.Handle("GET /api/v1/listings/cities/{city}/places", handlePlaces(store, log))
	mux.Handle("POST /api/v1/listings/cities/{city}/places", idem.Wrap(handleCreatePlace(store, log)))
	mux.Handle("GET /api/v1/listings/places/{id}", handlePlace(store, log))
	mux.Handle("PATCH /api/v1/listings/places/{id}", handleUpdatePlace(store, log))
	mux.Handle("POST /api/v1/listings/places/{id}/pitches", idem.Wrap(handleAddPitch(store, log)))
	mux.Handle("PATCH /api/v1/listings/places/{id}/pitches/{code}", handleUpdatePitch(store, log))
	mux.Handle("DELETE /api/v1/listings/places/{id}/pitches/{code}", handleDeletePitch(store, log, now))
	mux.Handle("GET /api/v1/listings/cities/{city}/markets", handleMarkets(store, log))
	mux.Handle("POST /api/v1/listings/cities/{city}/markets", idem.Wrap(handleCreateMarket(store, log, now)))
	mux.Handle("GET /api/v1/listings/markets/{id}", handleMarket(store, log))
	mux.Handle("PATCH /api/v1/listings/markets/{id}", handleUpdateMarket(store, log, now))
	mux.Handle("PATCH /api/v1/listings/market-days/{id}", handleChangeHours(store, log))
	mux.Handle("POST /api/v1/listings/market-days/{id}/cancel", idem.Wrap(handleCancelDay(store, log, now)))
	mux.Handle("POST /api/v1/listings/market-days/{id}/open", idem.Wrap(handleOpenDay(store, log, now)))
	mux.Handle("POST /api/v1/listings/market-days/{id}/close", idem.Wrap(handleCloseDay(store, log, now)))
	mux.Handle("GET /api/v1/listings/cities/{city}/vendors", handleCityVendors(store, log))
	mux.Handle("GET /api/v1/listings/market-days/{id}", handleMarketDay(store, log))
	mux.Handle("POST /api/v1/listings/market-days/{id}/applications", idem.Wrap(handleApply(store, log, now)))
	mux.Handle("GET /api/v1/listings/market-days/{id}/applications", handleDayApplications(store, log))
	mux.Handle("POST /api/v1/listings/markets/{id}/applications", idem.Wrap(handleApplyBatch(store, log, now)))
	mux.Handle("GET /api/v1/listings/application-batches/{id}", handleBatch(store, log, now))
	mux.Handle("POST /api/v1/listings/application-batches/{id}/withdraw", idem.Wrap(handleWithdrawBatch(store, log, now)))
	mux.Handle("GET /api/v1/listings/vendors/{id}/applications", handleVendorApplications(store, log))
	mux.Handle("GET /api/v1/listings/vendors/{id}/application-batches", handleVendorBatches(store, log, now))
	mux.Handle("GET /api/v1/listings/applications/{id}", handleApplication(store, log))
	mux.Handle("POST /api/v1/listings/applications/{id}/withdraw", idem.Wrap(handleWithdraw(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/accept", idem.Wrap(handleAccept(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/reject", idem.Wrap(handleReject(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/waitlist", idem.Wrap(handleWaitlist(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/move", idem.Wrap(handleMove(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/offer/accept", idem.Wrap(handleAcceptOffer(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/offer/decline", idem.Wrap(handleDeclineOffer(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/check-in", idem.Wrap(handleCheckIn(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/status-posts", idem.Wrap(handlePostStatus(store, log, now)))
	mux.Handle("POST /api/v1/listings/applications/{id}/check-out", idem.Wrap(handleCheckOut(store, log, now)))
	mux.Handle("POST /api/v1/listings/vendors", idem.Wrap(handleCreateVendor(store, log)))
	mux.Handle("GET /api/v1/listings/vendors/{id}", handleVendor(store, log))
	mux.Handle("GET /api/v1/listings/vendors/mine", handleMyVendors(store, log))
	mux.Handle("PATCH /api/v1/listings/vendors/{id}", handleUpdateVendor(store, log))
}
