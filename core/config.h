/* copystand — settings from the config file, the environment and the
 * command line, in rising order of precedence.
 *
 * The file is $XDG_CONFIG_HOME/copystand/config (default
 * ~/.config/copystand/config), lines of "key = value", '#' comments.
 * Environment: COPYSTAND_SERVER, _USER, _COLLECTION, _PASSWORD, _CA_FILE.
 * A password is only taken from a file that nobody else can read.
 */
#ifndef COPYSTAND_CONFIG_H
#define COPYSTAND_CONFIG_H

#include <stdbool.h>

#include "error.h"
#include "metadata.h"

typedef struct cs_config cs_config;

cs_config *config_new(void);
/* Wipes the password from memory. */
void config_free(cs_config *cfg);

/* Reads a config file; path NULL means the XDG default, which may be
 * absent.  Refuses a file that holds a password and is readable by others. */
int config_load_file(cs_config *cfg, const char *path, cs_error *err);

/* Takes COPYSTAND_* variables from the environment. */
int config_load_env(cs_config *cfg, cs_error *err);

/* Sets a value (command-line options); unknown keys are refused. */
int config_set(cs_config *cfg, const char *key, const char *value, cs_error *err);

/* Copies every value set in src over dst. */
int config_merge(cs_config *dst, const cs_config *src, cs_error *err);

/* The value of a key, or NULL. */
const char *config_get(const cs_config *cfg, const char *key);
bool config_get_bool(const cs_config *cfg, const char *key);

/* The default config file path (malloc'd). */
char *config_default_path(void);

/* The setting key as an index into choices (NULL-terminated); 0 when it
 * is not set; CS_E_CONFIG naming the choices for another value. */
int config_get_choice(const cs_config *cfg, const char *key,
		      const char *const *choices, int *out, cs_error *err);

/* The attachment fields the settings give (title, ispublic, license,
 * copyright-holder, credit, remarks); the strings belong to cfg. */
int config_attachment_defaults(const cs_config *cfg, metadata_defaults *out,
			       cs_error *err);

/* The session folder: the setting "dir", or ~/Pictures/copystand/
 * YYYY-MM-DD; created (malloc'd). */
int config_session_dir(const cs_config *cfg, char **out, cs_error *err);

/* mkdir -p, with the folder in the message. */
int config_make_dirs(char *path, cs_error *err);

#endif
