// notificationText is a notification as a sentence in the page's language:
// the notifier's own sentence when it has one in that language (`text`), else
// one built from the catalog and the notification's facts. Kinds this client
// does not know get a generic sentence.

import { t, state } from './core.js';

export function notificationText(n, cityName) {
  const own = n?.text?.[state.lang];
  if (typeof own === 'string' && own.trim()) return own;
  const d = n?.data ?? {};
  const vendor = d.vendor_name ?? '';
  const market = d.market_name ?? d.place_name ?? '';
  switch (n?.kind) {
    case 'stall.registered':
      if (vendor) return t('feed.stall_registered', { vendor, market, pitch: d.pitch ?? '' });
      break;
    case 'stall.checked_in':
      if (vendor) return t('feed.stall_checked_in', { vendor, market });
      break;
    case 'stall.checked_out':
      if (vendor) return t('feed.stall_checked_out', { vendor, market });
      break;
    case 'stall.status_posted': {
      const text = d.status_text ?? d.text;
      if (vendor && text) return t('feed.stall_status', { vendor, text });
      break;
    }
    case 'vendor.tomorrow':
      if (vendor) return t('feed.vendor_tomorrow', { vendor, market });
      break;
    case 'market_day.opened':
      if (market) return t('feed.day_opened', { market });
      break;
    case 'market_day.closed':
      if (market) return t('feed.day_closed', { market });
      break;
    case 'market_day.cancelled':
      if (market) return t('feed.day_cancelled', { market, reason: d.cancel_reason ?? d.reason ?? '' });
      break;
    case 'market_day.hours_changed':
      if (market) return t('feed.day_hours_changed', { market });
      break;
    case 'application.offered':
      if (market) return t('feed.offered', { market, pitch: d.pitch ?? '' });
      break;
    case 'calendar.cancelled':
    case 'calendar.occurrence_cancelled':
      if (d.title) return t('feed.event_cancelled', { title: d.title });
      break;
    case 'calendar.occurrence_moved':
      if (d.title) return t('feed.event_moved', { title: d.title });
      break;
    default:
      break;
  }
  return t('feed.other', { city: cityName ?? n?.city ?? '' });
}
