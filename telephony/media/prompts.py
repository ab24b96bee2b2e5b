"""The default prompt set: every prompt the engine's media features play, by name, with its
words in each language it ships in (English always). ``manage.py make_prompts`` speaks them
(espeak-ng) into ``<media dir>/prompts/<language>/<name>.wav``; a tenant's own recording of
the same name replaces one for its calls. Pure: the engine imports the names.
"""

from __future__ import annotations

import os

__all__ = ["DIGIT_PROMPTS", "PROMPTS", "default_path"]

# name -> language -> words.
PROMPTS: dict[str, dict[str, str]] = {
    "welcome": {
        "en": "Welcome. Please enter the extension number, or hold for the operator.",
        "de": (
            "Willkommen. Bitte geben Sie die Nebenstelle ein, oder bleiben Sie dran für die "
            "Zentrale."
        ),
        "fr": (
            "Bienvenue. Veuillez composer le numéro du poste, ou restez en ligne pour le standard."
        ),
        "es": "Bienvenido. Marque el número de extensión, o espere para hablar con la operadora.",
    },
    "invalid": {
        "en": "That is not a valid choice.",
        "de": "Das ist keine gültige Auswahl.",
        "fr": "Ce choix n'est pas valide.",
        "es": "Esa opción no es válida.",
    },
    "goodbye": {
        "en": "Goodbye.",
        "de": "Auf Wiederhören.",
        "fr": "Au revoir.",
        "es": "Adiós.",
    },
    "closed": {
        "en": "We are closed now. Please call again during our office hours.",
        "de": (
            "Wir haben jetzt geschlossen. Bitte rufen Sie während unserer Öffnungszeiten wieder an."
        ),
        "fr": "Nous sommes fermés. Veuillez rappeler pendant nos heures d'ouverture.",
        "es": "Ahora estamos cerrados. Llame de nuevo en nuestro horario de atención.",
    },
    "unavailable": {
        "en": "The person you are calling is not available.",
        "de": "Der gewünschte Gesprächspartner ist nicht erreichbar.",
        "fr": "Votre correspondant n'est pas disponible.",
        "es": "La persona a la que llama no está disponible.",
    },
    "busy": {
        "en": "The person you are calling is on the phone.",
        "de": "Der gewünschte Gesprächspartner telefoniert gerade.",
        "fr": "Votre correspondant est déjà en ligne.",
        "es": "La persona a la que llama está hablando por teléfono.",
    },
    "leave-message": {
        "en": "Please leave a message after the tone. Press hash when you are done.",
        "de": (
            "Bitte hinterlassen Sie nach dem Ton eine Nachricht. Drücken Sie Raute, wenn Sie "
            "fertig sind."
        ),
        "fr": (
            "Veuillez laisser un message après le bip. Appuyez sur dièse lorsque vous avez terminé."
        ),
        "es": "Deje un mensaje después de la señal. Pulse almohadilla cuando termine.",
    },
    "no-mailbox": {
        "en": "This mailbox is not available.",
        "de": "Diese Mailbox ist nicht verfügbar.",
        "fr": "Cette messagerie n'est pas disponible.",
        "es": "Este buzón no está disponible.",
    },
    "mailbox-number": {
        "en": "Please enter your mailbox number, followed by hash.",
        "de": "Bitte geben Sie Ihre Mailboxnummer ein, gefolgt von Raute.",
        "fr": "Veuillez composer le numéro de votre messagerie, suivi de dièse.",
        "es": "Marque el número de su buzón, seguido de almohadilla.",
    },
    "enter-pin": {
        "en": "Please enter your PIN, followed by hash.",
        "de": "Bitte geben Sie Ihre PIN ein, gefolgt von Raute.",
        "fr": "Veuillez composer votre code, suivi de dièse.",
        "es": "Marque su PIN, seguido de almohadilla.",
    },
    "wrong-pin": {
        "en": "That PIN is not correct.",
        "de": "Diese PIN ist nicht korrekt.",
        "fr": "Ce code n'est pas correct.",
        "es": "Ese PIN no es correcto.",
    },
    "you-have": {
        "en": "You have",
        "de": "Sie haben",
        "fr": "Vous avez",
        "es": "Tiene",
    },
    "new-messages": {
        "en": "new messages",
        "de": "neue Nachrichten",
        "fr": "nouveaux messages",
        "es": "mensajes nuevos",
    },
    "saved-messages": {
        "en": "saved messages",
        "de": "gespeicherte Nachrichten",
        "fr": "messages enregistrés",
        "es": "mensajes guardados",
    },
    "no-messages": {
        "en": "You have no messages.",
        "de": "Sie haben keine Nachrichten.",
        "fr": "Vous n'avez aucun message.",
        "es": "No tiene mensajes.",
    },
    "main-menu": {
        "en": (
            "To listen to your new messages, press 1. For saved messages, press 2. To record "
            "your greetings, press 0. To hang up, press star."
        ),
        "de": (
            "Um Ihre neuen Nachrichten abzuhören, drücken Sie 1. Für gespeicherte Nachrichten"
            " drücken Sie 2. Um Ihre Ansagen aufzunehmen, drücken Sie 0. Zum Auflegen drücken"
            " Sie Stern."
        ),
        "fr": (
            "Pour écouter vos nouveaux messages, appuyez sur 1. Pour les messages "
            "enregistrés, appuyez sur 2. Pour enregistrer vos annonces, appuyez sur 0. Pour "
            "raccrocher, appuyez sur étoile."
        ),
        "es": (
            "Para escuchar sus mensajes nuevos, pulse 1. Para los mensajes guardados, pulse "
            "2. Para grabar sus saludos, pulse 0. Para colgar, pulse asterisco."
        ),
    },
    "message-menu": {
        "en": (
            "To play the message again, press 1. To save it, press 2. To delete it, press 7. "
            "For the next message, press 9. For the main menu, press star."
        ),
        "de": (
            "Um die Nachricht erneut abzuspielen, drücken Sie 1. Zum Speichern drücken Sie 2."
            " Zum Löschen drücken Sie 7. Für die nächste Nachricht drücken Sie 9. Für das "
            "Hauptmenü drücken Sie Stern."
        ),
        "fr": (
            "Pour réécouter le message, appuyez sur 1. Pour l'enregistrer, appuyez sur 2. "
            "Pour le supprimer, appuyez sur 7. Pour le message suivant, appuyez sur 9. Pour "
            "le menu principal, appuyez sur étoile."
        ),
        "es": (
            "Para volver a escuchar el mensaje, pulse 1. Para guardarlo, pulse 2. Para "
            "borrarlo, pulse 7. Para el siguiente mensaje, pulse 9. Para el menú principal, "
            "pulse asterisco."
        ),
    },
    "message": {
        "en": "Message",
        "de": "Nachricht",
        "fr": "Message",
        "es": "Mensaje",
    },
    "from": {
        "en": "from",
        "de": "von",
        "fr": "de",
        "es": "de",
    },
    "saved": {
        "en": "Message saved.",
        "de": "Nachricht gespeichert.",
        "fr": "Message enregistré.",
        "es": "Mensaje guardado.",
    },
    "deleted": {
        "en": "Message deleted.",
        "de": "Nachricht gelöscht.",
        "fr": "Message supprimé.",
        "es": "Mensaje borrado.",
    },
    "no-more-messages": {
        "en": "There are no more messages.",
        "de": "Es gibt keine weiteren Nachrichten.",
        "fr": "Il n'y a plus de messages.",
        "es": "No hay más mensajes.",
    },
    "greeting-menu": {
        "en": (
            "To record your unavailable greeting, press 1. To record your busy greeting, "
            "press 2. For the main menu, press star."
        ),
        "de": (
            "Um Ihre Ansage für Nichterreichbarkeit aufzunehmen, drücken Sie 1. Für Ihre "
            "Besetztansage drücken Sie 2. Für das Hauptmenü drücken Sie Stern."
        ),
        "fr": (
            "Pour enregistrer votre annonce d'absence, appuyez sur 1. Pour votre annonce "
            "d'occupation, appuyez sur 2. Pour le menu principal, appuyez sur étoile."
        ),
        "es": (
            "Para grabar su saludo de no disponible, pulse 1. Para su saludo de ocupado, "
            "pulse 2. Para el menú principal, pulse asterisco."
        ),
    },
    "record-greeting": {
        "en": "Record your greeting after the tone. Press hash when you are done.",
        "de": "Sprechen Sie Ihre Ansage nach dem Ton. Drücken Sie Raute, wenn Sie fertig sind.",
        "fr": (
            "Enregistrez votre annonce après le bip. Appuyez sur dièse lorsque vous avez terminé."
        ),
        "es": "Grabe su saludo después de la señal. Pulse almohadilla cuando termine.",
    },
    "greeting-saved": {
        "en": "Your greeting has been saved.",
        "de": "Ihre Ansage wurde gespeichert.",
        "fr": "Votre annonce a été enregistrée.",
        "es": "Su saludo se ha guardado.",
    },
    "dnd-on": {
        "en": "Do not disturb is on.",
        "de": "Bitte nicht stören ist eingeschaltet.",
        "fr": "Ne pas déranger est activé.",
        "es": "No molestar está activado.",
    },
    "dnd-off": {
        "en": "Do not disturb is off.",
        "de": "Bitte nicht stören ist ausgeschaltet.",
        "fr": "Ne pas déranger est désactivé.",
        "es": "No molestar está desactivado.",
    },
    "forward-on": {
        "en": "Call forwarding is on.",
        "de": "Die Rufumleitung ist eingeschaltet.",
        "fr": "Le renvoi d'appel est activé.",
        "es": "El desvío de llamadas está activado.",
    },
    "forward-off": {
        "en": "Call forwarding is off.",
        "de": "Die Rufumleitung ist ausgeschaltet.",
        "fr": "Le renvoi d'appel est désactivé.",
        "es": "El desvío de llamadas está desactivado.",
    },
    "voicemail-on": {
        "en": "Calls go to your voicemail.",
        "de": "Anrufe gehen auf Ihre Mailbox.",
        "fr": "Les appels sont renvoyés vers votre messagerie.",
        "es": "Las llamadas van a su buzón de voz.",
    },
    "voicemail-off": {
        "en": "Calls no longer go to your voicemail.",
        "de": "Anrufe gehen nicht mehr auf Ihre Mailbox.",
        "fr": "Les appels ne sont plus renvoyés vers votre messagerie.",
        "es": "Las llamadas ya no van a su buzón de voz.",
    },
    "feature-failed": {
        "en": "That feature is not available.",
        "de": "Diese Funktion ist nicht verfügbar.",
        "fr": "Cette fonction n'est pas disponible.",
        "es": "Esa función no está disponible.",
    },
    "enter-number": {
        "en": "Please enter the number you want to call, followed by hash.",
        "de": "Bitte geben Sie die gewünschte Rufnummer ein, gefolgt von Raute.",
        "fr": "Veuillez composer le numéro que vous souhaitez appeler, suivi de dièse.",
        "es": "Marque el número al que desea llamar, seguido de almohadilla.",
    },
    "please-hold": {
        "en": "Please hold while we connect your call.",
        "de": "Bitte bleiben Sie dran, wir verbinden Ihren Anruf.",
        "fr": "Veuillez patienter, nous transférons votre appel.",
        "es": "Espere un momento mientras conectamos su llamada.",
    },
    "queue-position": {
        "en": "You are caller number",
        "de": "Sie sind Anrufer Nummer",
        "fr": "Vous êtes l'appelant numéro",
        "es": "Usted es la llamada número",
    },
    "queue-wait": {
        "en": "Your estimated waiting time is",
        "de": "Ihre voraussichtliche Wartezeit beträgt",
        "fr": "Votre temps d'attente estimé est de",
        "es": "Su tiempo de espera estimado es de",
    },
    "queue-minutes": {
        "en": "minutes.",
        "de": "Minuten.",
        "fr": "minutes.",
        "es": "minutos.",
    },
    "queue-callback-number": {
        "en": "Enter the number we should call you back on, followed by hash. "
        "For this number, press hash.",
        "de": "Geben Sie die Rückrufnummer ein, gefolgt von Raute. Für diese Nummer drücken "
        "Sie Raute.",
        "fr": "Composez le numéro de rappel, suivi de dièse. Pour ce numéro, appuyez sur dièse.",
        "es": "Marque el número para devolverle la llamada, seguido de almohadilla. Para este "
        "número, pulse almohadilla.",
    },
    "queue-callback-ok": {
        "en": "Thank you. We will call you back. You keep your place in the queue.",
        "de": "Vielen Dank. Wir rufen Sie zurück. Sie behalten Ihren Platz in der Warteschlange.",
        "fr": "Merci. Nous vous rappellerons. Vous gardez votre place dans la file.",
        "es": "Gracias. Le devolveremos la llamada. Conserva su lugar en la cola.",
    },
    "agent-logged-in": {
        "en": "You are logged in to the queue.",
        "de": "Sie sind in der Warteschlange angemeldet.",
        "fr": "Vous êtes connecté à la file d'attente.",
        "es": "Ha iniciado sesión en la cola.",
    },
    "agent-logged-out": {
        "en": "You are logged out of the queue.",
        "de": "Sie sind von der Warteschlange abgemeldet.",
        "fr": "Vous êtes déconnecté de la file d'attente.",
        "es": "Ha cerrado sesión en la cola.",
    },
    "agent-ready": {
        "en": "You are ready for calls.",
        "de": "Sie sind bereit für Anrufe.",
        "fr": "Vous êtes disponible pour les appels.",
        "es": "Está disponible para llamadas.",
    },
    "agent-not-ready": {
        "en": "You are not ready for calls.",
        "de": "Sie sind nicht bereit für Anrufe.",
        "fr": "Vous n'êtes pas disponible pour les appels.",
        "es": "No está disponible para llamadas.",
    },
}
DIGIT_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "de": ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
    "fr": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
    "es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
}
# "digit-0" .. "digit-9": numbers are said digit by digit.
DIGIT_PROMPTS = {
    f"digit-{d}": {language: words[d] for language, words in DIGIT_WORDS.items()} for d in range(10)
}
PROMPTS.update(DIGIT_PROMPTS)


def default_path(media_dir: str, language: str, name: str) -> str:
    """Where the default prompt ``name`` of ``language`` is (it may not exist: a language the
    set has no words for falls back to English, which the caller decides)."""
    return os.path.join(media_dir, "prompts", language, f"{name}.wav")
