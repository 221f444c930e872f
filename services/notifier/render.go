package notifier

import (
	"slices"
	"strings"
)

// catalog holds the sentence of each notification kind per language, with
// {placeholders} filled from the notification's facts. Residents read the
// text in their language; clients that prefer their own wording use the
// facts in data.
var catalog = map[string]map[string]string{
	"stall.registered": {
		"en": "{vendor} has a stall at {market} on {date} (pitch {pitch})",
		"nl": "{vendor} staat op {date} op {market} (standplaats {pitch})",
		"it": "{vendor} ha un banco a {market} il {date} (posteggio {pitch})",
		"fr": "{vendor} tient un stand à {market} le {date} (emplacement {pitch})",
		"de": "{vendor} hat am {date} einen Stand auf dem {market} (Platz {pitch})",
	},
	"stall.checked_in": {
		"en": "{vendor} is open at {market}, pitch {pitch}",
		"nl": "{vendor} is open op {market}, standplaats {pitch}",
		"it": "{vendor} è aperto a {market}, posteggio {pitch}",
		"fr": "{vendor} est ouvert à {market}, emplacement {pitch}",
		"de": "{vendor} hat auf dem {market} geöffnet, Platz {pitch}",
	},
	"stall.status_posted": {
		"en": "{vendor} at {market}: “{status}”",
		"nl": "{vendor} op {market}: “{status}”",
		"it": "{vendor} a {market}: «{status}»",
		"fr": "{vendor} à {market} : « {status} »",
		"de": "{vendor} auf dem {market}: „{status}“",
	},
	"stall.checked_out": {
		"en": "{vendor} has closed for today at {market}",
		"nl": "{vendor} is gesloten voor vandaag op {market}",
		"it": "{vendor} ha chiuso per oggi a {market}",
		"fr": "{vendor} a fermé pour aujourd'hui à {market}",
		"de": "{vendor} hat auf dem {market} für heute geschlossen",
	},
	"market_day.opened": {
		"en": "{market} is open now at {place}",
		"nl": "{market} is nu open op {place}",
		"it": "{market} è aperto ora in {place}",
		"fr": "{market} est ouvert maintenant, {place}",
		"de": "{market} hat jetzt geöffnet, {place}",
	},
	"market_day.cancelled": {
		"en": "{market} on {date} is cancelled: {reason}",
		"nl": "{market} op {date} gaat niet door: {reason}",
		"it": "{market} del {date} è annullato: {reason}",
		"fr": "{market} du {date} est annulé : {reason}",
		"de": "{market} am {date} fällt aus: {reason}",
	},
	"market_day.hours_changed": {
		"en": "{market} on {date} now runs {hours}",
		"nl": "{market} op {date} is nu open van {hours}",
		"it": "{market} del {date} ora è aperto {hours}",
		"fr": "{market} du {date} a lieu désormais {hours}",
		"de": "{market} am {date} ist jetzt {hours} geöffnet",
	},
	"vendor.tomorrow": {
		"en": "{vendor} will be at {market} tomorrow (pitch {pitch})",
		"nl": "{vendor} staat morgen op {market} (standplaats {pitch})",
		"it": "{vendor} sarà a {market} domani (posteggio {pitch})",
		"fr": "{vendor} sera à {market} demain (emplacement {pitch})",
		"de": "{vendor} ist morgen auf dem {market} (Platz {pitch})",
	},
	"calendar.cancelled": {
		"en": "{title} is cancelled{reason_suffix}",
		"nl": "{title} gaat niet door{reason_suffix}",
		"it": "{title} è annullato{reason_suffix}",
		"fr": "{title} est annulé{reason_suffix}",
		"de": "{title} fällt aus{reason_suffix}",
	},
	"calendar.occurrence_cancelled": {
		"en": "{title} on {when} is cancelled",
		"nl": "{title} op {when} gaat niet door",
		"it": "{title} del {when} è annullato",
		"fr": "{title} du {when} est annulé",
		"de": "{title} am {when} fällt aus",
	},
	"calendar.occurrence_moved": {
		"en": "{title} on {was} moves to {when}",
		"nl": "{title} van {was} verhuist naar {when}",
		"it": "{title} del {was} è spostato al {when}",
		"fr": "{title} du {was} est déplacé au {when}",
		"de": "{title} am {was} wird auf {when} verlegt",
	},
	"application.offered": {
		"en": "A pitch is free for you at {market} on {date}: accept the offer before it expires",
		"nl": "Er is een standplaats vrij voor u op {market} op {date}: neem het aanbod aan voor het verloopt",
		"it": "C'è un posteggio libero per te a {market} il {date}: accetta l'offerta prima che scada",
		"fr": "Un emplacement se libère pour vous à {market} le {date} : acceptez l'offre avant qu'elle expire",
		"de": "Ein Platz ist für Sie frei auf dem {market} am {date}: nehmen Sie das Angebot an, bevor es abläuft",
	},
}

// render returns the notification's sentence in English and in each of the
// city's languages that the catalog has.
func render(kind string, cityLanguages []string, facts map[string]string) map[string]string {
	texts := catalog[kind]
	if texts == nil {
		return nil
	}
	pairs := make([]string, 0, 2*len(facts))
	for k, v := range facts {
		pairs = append(pairs, "{"+k+"}", v)
	}
	r := strings.NewReplacer(pairs...)
	out := map[string]string{}
	for lang, tmpl := range texts {
		if lang == "en" || slices.Contains(cityLanguages, lang) {
			out[lang] = r.Replace(tmpl)
		}
	}
	return out
}
