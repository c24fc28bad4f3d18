#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages quote what servers and files said: a terminal must not get
 * their control bytes (escape sequences) through us. */
static void defang(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int cs_error_set(cs_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		defang(err->msg);
	}
	return code;
}

int cs_error_prefix(cs_error *err, const char *fmt, ...)
{
	char head[256], old[sizeof err->msg];
	va_list ap;

	if (!err)
		return 0;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	snprintf(err->msg, sizeof err->msg, "%s: %s", head, old);
	defang(err->msg);
	return err->code;
}

void cs_error_clear(cs_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

bool cs_error_is_transient(int code)
{
	switch (code) {
	case CS_E_UNREACHABLE:
	case CS_E_TIMEOUT:
	case CS_E_NETWORK:
	case CS_E_SERVER:
	case CS_E_SESSION:
	case CS_E_TOKEN:
		return true;
	default:
		return false;
	}
}

const char *cs_error_name(int code)
{
	static const struct { int code; const char *name; } names[] = {
		{ CS_OK, "ok" },
		{ CS_E_INVALID, "invalid" },
		{ CS_E_NOMEM, "nomem" },
		{ CS_E_IO, "io" },
		{ CS_E_CONFIG, "config" },
		{ CS_E_UNREACHABLE, "unreachable" },
		{ CS_E_TIMEOUT, "timeout" },
		{ CS_E_TLS, "tls" },
		{ CS_E_NETWORK, "network" },
		{ CS_E_SERVER, "server" },
		{ CS_E_PROTOCOL, "protocol" },
		{ CS_E_AUTH, "auth" },
		{ CS_E_ACCESS, "access" },
		{ CS_E_NO_AGENT, "no-agent" },
		{ CS_E_SESSION, "session" },
		{ CS_E_NO_ASSETS, "no-asset-server" },
		{ CS_E_TOKEN, "token" },
		{ CS_E_TOO_LARGE, "too-large" },
		{ CS_E_NOT_FOUND, "not-found" },
		{ CS_E_CONFLICT, "conflict" },
		{ CS_E_UNSUPPORTED, "unsupported" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].code == code)
			return names[i].name;
	return "error";
}
