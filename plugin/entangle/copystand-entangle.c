/* copystand-entangle.c — the Entangle plugin (docs/plugins.md): every
 * capture Entangle downloads goes to copystand, named from the catalog
 * number that was current when its shutter was pressed (numbers are
 * scanned into a field in Entangle's title bar), and is attached to its
 * record in Specify in the background.
 *
 * Entangle ships no headers, so all of Entangle is reached by name: the
 * types EntangleCamera, EntangleCameraAutomata and EntangleCameraManager,
 * the signals "camera-file-captured" and "camera-file-downloaded" of the
 * camera and "camera-capture-begin" and "camera-capture-end" of the
 * automaton that runs Entangle's captures, and the camera file's
 * properties "name" and "data".  The rest is libpeas, GTK 3 and
 * copystand.h.
 *
 * copystand's calls run on a thread of ours that owns the station: a
 * login, a slow disk or Specify never holds up Entangle's window. */
#define G_LOG_DOMAIN "copystand"

#include <string.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <libpeas/peas.h>

#include <copystand.h>

/* The action that sets the current number: the field activates it, and
 * anything on the session bus can (`gapplication action`). */
#define NUMBER_ACTION "copystand-catalog-number"

/* Entangle downloads the files of one press one by one, the RAW of a pair
 * up to a few seconds after its JPEG; copystand names a press's files in
 * one call, so the first waits this long for its other half. */
#define PRESS_WAIT_US (3 * G_USEC_PER_SEC)

/* A capture Entangle began whose files did not come by then (the camera
 * kept them, the download failed) is forgotten. */
#define BEGUN_KEEP_US (60 * G_USEC_PER_SEC)

/* Said once the station is open, whole in the status line. */
#define READY "copystand is ready: scan a label, then shoot"

/* --- the worker: our thread, owner of the copystand station ------------- */

enum cmd_kind { CMD_NUMBER, CMD_BEGIN, CMD_CAPTURED, CMD_END, CMD_FILE, CMD_RESOLVE, CMD_QUIT };

typedef struct cmd {
	enum cmd_kind kind;
	char *text;          /* NUMBER: as scanned; FILE: the camera's file name;
			      * RESOLVE: the held file the person decided */
	char *stem;          /* FILE, CAPTURED: the camera's file name to the first
			      * dot (a dual-slot camera may put RAW and JPEG in
			      * different folders) */
	GByteArray *data;    /* FILE: the image, as Entangle downloaded it */
	double at;           /* BEGIN: when Entangle asked the camera; NUMBER: when
			      * it was scanned (unix seconds) */
	enum copystand_choice choice;   /* RESOLVE */
} cmd;

/* A capture Entangle began: its shot takes the number current then. */
typedef struct begun {
	unsigned long press;
	char *stem;          /* its file's, once the camera named it */
	gboolean ended;      /* Entangle's capture call returned */
	gint64 until;        /* forgotten then */
} begun;

typedef struct worker {
	GObject *owner;      /* the plugin, for notes to the main thread */
	GMainContext *main_ctx, *ctx;
	GMainLoop *loop;
	GThread *thread;
	GAsyncQueue *inbox;  /* cmds from the main thread, in time order */
	copystand *cs;
	GSource *events;     /* watches copystand_event_fd */
	char *spool;         /* private folder for the images until copystand copies them */
	GQueue begun;        /* captures begun and not handed in, oldest first */
	GPtrArray *press;    /* spool paths of the press being gathered */
	GString *press_names;
	char *press_stem;
	gint64 press_until;
	GSource *timer;
	copystand_held_info held;   /* as last told to the main thread */
} worker;

/* What the worker tells the main thread. */
enum note_kind {
	NOTE_NEWS,           /* something happened: text whole, brief for the status line */
	NOTE_NEXT,           /* text: the number the next press takes, and its check */
	NOTE_HELD,           /* held: the capture held last (file "": none) */
	NOTE_EARLIER,        /* count files of earlier sessions wait for a person;
			      * text says so, and what to run */
};

typedef struct note {
	GObject *owner;
	enum note_kind kind;
	gboolean problem;
	char *text, *brief;
	copystand_held_info held;
	size_t count;
} note;

static cmd *cmd_new(enum cmd_kind kind)
{
	cmd *c = g_new0(cmd, 1);

	c->kind = kind;
	return c;
}

static void cmd_free(gpointer p)
{
	cmd *c = p;

	if (!c)
		return;
	g_free(c->text);
	g_free(c->stem);
	if (c->data)
		g_byte_array_unref(c->data);
	g_free(c);
}

static void begun_free(gpointer p)
{
	begun *b = p;

	g_free(b->stem);
	g_free(b);
}

static void note_free(gpointer p)
{
	note *n = p;

	g_object_unref(n->owner);
	g_free(n->text);
	g_free(n->brief);
	g_free(n);
}

static gboolean note_show(gpointer p);

/* Hands n to the main thread, from any thread. */
static void send_note(worker *w, enum note_kind kind, note *n)
{
	n->kind = kind;
	n->owner = g_object_ref(w->owner);
	g_main_context_invoke_full(w->main_ctx, G_PRIORITY_DEFAULT, note_show, n, note_free);
}

/* What the status line shows of a message: up to its first ": " (the
 * tooltip has the rest), after skip (the number, shown beside it). */
static char *brief_of(const char *text, const char *skip)
{
	size_t n = strlen(skip);
	const char *colon;

	if (n && !strncmp(text, skip, n))
		text += n + strspn(text + n, " :");
	colon = strstr(text, ": ");
	return colon ? g_strndup(text, (gsize)(colon - text)) : g_strdup(text);
}

/* The status line's form of news about a file: what happened, the file
 * and its catalog number ("NOT ATTACHED 000099999.jpg — 000099999"). */
static char *brief_of_file(const copystand_event *ev)
{
	const char *at = ev->file[0] ? strstr(ev->message, ev->file) : NULL;
	GString *b;

	if (!at)
		return brief_of(ev->message, "");
	b = g_string_new_len(ev->message, at - ev->message + (gssize)strlen(ev->file));
	if (ev->identifier[0])
		g_string_append_printf(b, " — %s", ev->identifier);
	return g_string_free(b, FALSE);
}

/* text whole for the tooltip and the log, brief for the status line. */
static void post_news(worker *w, gboolean problem, char *text, char *brief)
{
	note *n = g_new0(note, 1);

	n->problem = problem;
	n->text = text;
	n->brief = brief;
	send_note(w, NOTE_NEWS, n);
}

/* Tells the technician. */
G_GNUC_PRINTF(3, 4)
static void post(worker *w, gboolean problem, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	post_news(w, problem, text, brief_of(text, ""));
}

static void post_next(worker *w, const char *number, const char *mark)
{
	note *n = g_new0(note, 1);

	n->text = g_strdup_printf("%s %s", number, mark);
	send_note(w, NOTE_NEXT, n);
}

/* Tells the main thread what is held, when that changed or always. */
static void post_held(worker *w, gboolean always)
{
	copystand_held_info now = { 0 };
	note *n;

	if (w->cs)
		copystand_held(w->cs, &now);
	if (!always && !memcmp(&now, &w->held, sizeof now))
		return;
	w->held = now;
	n = g_new0(note, 1);
	n->held = now;
	send_note(w, NOTE_HELD, n);
}

/* The check of the current number, beside it: ✓ found, ? not checked
 * (Specify unreachable), ✗ not found or ambiguous (the message starts
 * with the number only when it was found or not checked). */
static void tell_checked(worker *w, const copystand_event *ev)
{
	size_t n = strlen(ev->identifier);
	gboolean named = n && !strncmp(ev->message, ev->identifier, n);
	const char *mark = !named ? "✗" : ev->message[n] == ':' ? "?" : "✓";

	post_next(w, n ? ev->identifier : "no number", mark);
	post_news(w, !named, g_strdup(ev->message), brief_of(ev->message, ev->identifier));
}

/* Files earlier sessions left: a count beside the status line, not news. */
static void tell_earlier(worker *w)
{
	copystand_earlier_info e;
	char err[512] = "";
	note *n;

	if (copystand_earlier(w->cs, &e, err, sizeof err) != 0) {
		post(w, TRUE, "files earlier sessions left are not counted: %s", err);
		return;
	}
	n = g_new0(note, 1);
	n->count = e.count;
	n->text = g_strdup(e.message);
	send_note(w, NOTE_EARLIER, n);
}

static void drain_events(worker *w)
{
	copystand_event ev;

	while (copystand_next_event(w->cs, &ev) == 1) {
		if (ev.kind == COPYSTAND_EVENT_CHECKED)
			tell_checked(w, &ev);
		else if (ev.kind == COPYSTAND_EVENT_EARLIER)
			tell_earlier(w);
		else
			post_news(w, ev.kind == COPYSTAND_EVENT_PROBLEM ||
				  ev.kind == COPYSTAND_EVENT_OFFLINE,
				  g_strdup(ev.message), brief_of_file(&ev));
	}
	post_held(w, FALSE);
}

static gboolean on_events(gint fd G_GNUC_UNUSED, GIOCondition cond G_GNUC_UNUSED,
			  gpointer p)
{
	drain_events(p);
	return G_SOURCE_CONTINUE;
}

/* Opens the station from the user's configuration; retried at each scan
 * and file while it fails, so fixing the configuration is enough. */
static int ensure_open(worker *w, char *err, size_t errlen)
{
	int rc;

	if (w->cs)
		return 0;
	rc = copystand_open(NULL, &w->cs, err, errlen);
	if (rc) {
		post(w, TRUE, "copystand cannot start: %s", err);
		return rc;
	}
	w->events = g_unix_fd_source_new(copystand_event_fd(w->cs), G_IO_IN);
	g_source_set_callback(w->events, G_SOURCE_FUNC(on_events), w, NULL);
	g_source_attach(w->events, w->ctx);
	post_news(w, FALSE, g_strdup(READY), g_strdup(READY));
	post_held(w, FALSE);
	return 0;
}

static void set_number(worker *w, const char *text, double at)
{
	char err[512] = "";

	if (ensure_open(w, err, sizeof err) != 0)
		return;
	/* What was said of the number before, said before this one. */
	drain_events(w);
	/* Shots are placed against the scan's own time, not this call's. */
	if (copystand_set_catalog_number_at(w->cs, text, at, err, sizeof err) == 0) {
		post_next(w, text, "…");
	} else {
		post_next(w, "no number", "✗");
		post(w, TRUE, "%s refused: %s", text, err);
	}
}

/* Entangle asks the camera to fire at: the shot takes the number current
 * now, which every scan before this command has set and no later one. */
static void press_begin(worker *w, double at)
{
	char err[512] = "";
	begun *b;
	unsigned long press;

	if (ensure_open(w, err, sizeof err) != 0)
		return;
	if (copystand_press_begin(w->cs, at, &press, err, sizeof err) != 0) {
		post(w, TRUE, "a capture's number was not kept: %s; it is named from its time",
		     err);
		return;
	}
	b = g_new0(begun, 1);
	b->press = press;
	b->until = g_get_monotonic_time() + BEGUN_KEEP_US;
	g_queue_push_tail(&w->begun, b);
}

/* The camera named the file of the oldest capture still waiting for it. */
static void press_captured(worker *w, const char *stem)
{
	for (GList *l = w->begun.head; l; l = l->next) {
		begun *b = l->data;

		if (!b->stem && !b->ended) {
			b->stem = g_strdup(stem);
			return;
		}
	}
}

/* The oldest capture running ended; without a file it failed, and is
 * forgotten so that no later shot takes its number. */
static void press_end(worker *w)
{
	for (GList *l = w->begun.head; l; l = l->next) {
		begun *b = l->data;

		if (b->ended)
			continue;
		b->ended = TRUE;
		if (!b->stem) {
			begun_free(b);
			g_queue_delete_link(&w->begun, l);
		}
		return;
	}
}

static void begun_expire(worker *w)
{
	gint64 now = g_get_monotonic_time();
	begun *b;

	while ((b = g_queue_peek_head(&w->begun)) && b->until < now)
		begun_free(g_queue_pop_head(&w->begun));
}

/* The capture Entangle began whose file has this stem, taken; 0 when
 * none did: a press of the camera's own button. */
static unsigned long press_take(worker *w, const char *stem)
{
	for (GList *l = w->begun.head; l; l = l->next) {
		begun *b = l->data;

		if (b->stem && !strcmp(b->stem, stem)) {
			unsigned long press = b->press;

			begun_free(b);
			g_queue_delete_link(&w->begun, l);
			return press;
		}
	}
	return 0;
}

static gboolean is_jpeg(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (!g_ascii_strcasecmp(dot, ".jpg") || !g_ascii_strcasecmp(dot, ".jpeg"));
}

/* A press is complete once it holds a JPEG and something else (the RAW). */
static gboolean press_complete(const worker *w)
{
	gboolean jpeg = FALSE, other = FALSE;

	for (guint i = 0; i < w->press->len; i++) {
		if (is_jpeg(w->press->pdata[i]))
			jpeg = TRUE;
		else
			other = TRUE;
	}
	return jpeg && other;
}

static gboolean in_press(const worker *w, const cmd *c)
{
	if (strcmp(c->stem, w->press_stem) != 0)
		return FALSE;
	for (guint i = 0; i < w->press->len; i++) {
		char *base = g_path_get_basename(w->press->pdata[i]);
		gboolean same = !strcmp(base, c->text);

		g_free(base);
		if (same)      /* the camera's numbering came round: a new press */
			return FALSE;
	}
	return TRUE;
}

/* Writes a downloaded file into the spool and adds it to the press (the
 * JPEG first: copystand returns the first file's name). */
static void press_add(worker *w, cmd *c)
{
	char *base = g_path_get_basename(c->text), *path;
	GError *e = NULL;

	if (!strcmp(base, ".") || !strcmp(base, "/")) {
		post(w, TRUE, "a capture without a usable name (\"%s\") was not given to "
		     "copystand; Entangle keeps its own copy", c->text);
		g_free(base);
		return;
	}
	path = g_build_filename(w->spool, base, NULL);
	if (!g_file_set_contents_full(path, (const char *)c->data->data, c->data->len,
				      G_FILE_SET_CONTENTS_NONE, 0600, &e)) {
		post(w, TRUE, "%s not given to copystand: %s; Entangle keeps its own copy",
		     base, e->message);
		g_error_free(e);
		g_free(path);
		g_free(base);
		return;
	}
	if (!w->press_stem) {
		w->press_stem = g_strdup(c->stem);
		g_string_assign(w->press_names, base);
	} else {
		g_string_append_printf(w->press_names, " + %s", base);
	}
	if (is_jpeg(base))
		g_ptr_array_insert(w->press, 0, path);
	else
		g_ptr_array_add(w->press, path);
	w->press_until = g_get_monotonic_time() + PRESS_WAIT_US;
	g_free(base);
}

/* Hands the gathered press to copystand: as the capture Entangle began
 * for it, else as a press of the camera's button, which copystand places
 * in time itself. */
static void press_submit(worker *w)
{
	const char *const *paths = (const char *const *)w->press->pdata;
	unsigned long press = press_take(w, w->press_stem);
	char err[512] = "", *name = NULL;
	int rc = ensure_open(w, err, sizeof err);

	if (rc == 0)
		rc = press ? copystand_submit_press(w->cs, press, paths, w->press->len, &name,
						    err, sizeof err)
			   : copystand_submit_files(w->cs, paths, w->press->len, &name,
						    err, sizeof err);
	if (rc == 0)
		post(w, FALSE, "%s → %s", w->press_names->str, name);
	else
		post(w, TRUE, "%s not given to copystand: %s; Entangle keeps its own copy",
		     w->press_names->str, err);
	copystand_free(name);
	for (guint i = 0; i < w->press->len; i++)
		g_unlink(w->press->pdata[i]);
	g_ptr_array_set_size(w->press, 0);
	g_clear_pointer(&w->press_stem, g_free);
}

/* The person's choice for the held capture they saw; none if another is
 * held by now, which they have not seen yet. */
static void resolve(worker *w, const cmd *c)
{
	copystand_held_info now;
	char err[512] = "";

	if (w->cs && copystand_held(w->cs, &now) && !strcmp(now.file, c->text) &&
	    copystand_resolve_held(w->cs, c->choice, err, sizeof err) != 0)
		post(w, TRUE, "%s not decided: %s", c->text, err);
	post_held(w, TRUE);
}

static void run(worker *w, cmd *c)
{
	switch (c->kind) {
	case CMD_NUMBER:
		set_number(w, c->text, c->at);
		break;
	case CMD_BEGIN:
		press_begin(w, c->at);
		break;
	case CMD_CAPTURED:
		press_captured(w, c->stem);
		break;
	case CMD_END:
		press_end(w);
		break;
	case CMD_FILE:
		if (w->press_stem && !in_press(w, c))
			press_submit(w);
		press_add(w, c);
		if (press_complete(w))
			press_submit(w);
		break;
	case CMD_RESOLVE:
		resolve(w, c);
		break;
	case CMD_QUIT:
		if (w->press_stem)
			press_submit(w);
		g_main_loop_quit(w->loop);
		break;
	}
}

static gboolean on_timer(gpointer p);

/* Does the waiting commands in order, at once: a scan is noted when it
 * comes, and a press's number is fixed at its begin, so nothing waits for
 * a press being gathered, which is handed in once complete, when a file
 * of another press comes, or PRESS_WAIT_US after its last file. */
static void work(worker *w)
{
	cmd *c;

	if (w->timer) {
		g_source_destroy(w->timer);
		g_clear_pointer(&w->timer, g_source_unref);
	}
	begun_expire(w);
	while ((c = g_async_queue_try_pop(w->inbox))) {
		run(w, c);
		cmd_free(c);
	}
	if (!w->press_stem)
		return;
	gint64 left = w->press_until - g_get_monotonic_time();
	if (left <= 0) {
		press_submit(w);
		return;
	}
	w->timer = g_timeout_source_new((guint)(left / 1000) + 1);
	g_source_set_callback(w->timer, on_timer, w, NULL);
	g_source_attach(w->timer, w->ctx);
}

static gboolean on_timer(gpointer p)
{
	worker *w = p;

	g_clear_pointer(&w->timer, g_source_unref);
	work(w);
	return G_SOURCE_REMOVE;
}

static gboolean on_inbox(gpointer p)
{
	work(p);
	return G_SOURCE_REMOVE;
}

static gpointer worker_run(gpointer p)
{
	worker *w = p;
	char err[512];

	g_main_context_push_thread_default(w->ctx);
	ensure_open(w, err, sizeof err);
	g_main_loop_run(w->loop);
	if (w->events) {
		g_source_destroy(w->events);
		g_source_unref(w->events);
	}
	copystand_close(w->cs);
	g_main_context_pop_thread_default(w->ctx);
	return NULL;
}

static void worker_send(worker *w, cmd *c)
{
	GSource *s = g_idle_source_new();

	g_async_queue_push(w->inbox, c);
	g_source_set_callback(s, on_inbox, w, NULL);
	g_source_attach(s, w->ctx);
	g_source_unref(s);
}

static worker *worker_start(GObject *owner)
{
	GError *e = NULL;
	worker *w = g_new0(worker, 1);

	w->spool = g_dir_make_tmp("copystand-entangle-XXXXXX", &e);
	if (!w->spool) {
		g_warning("copystand is off: no private folder for captures: %s", e->message);
		g_error_free(e);
		g_free(w);
		return NULL;
	}
	w->owner = owner;
	w->main_ctx = g_main_context_ref_thread_default();
	w->ctx = g_main_context_new();
	w->loop = g_main_loop_new(w->ctx, FALSE);
	w->inbox = g_async_queue_new_full(cmd_free);
	g_queue_init(&w->begun);
	w->press = g_ptr_array_new_with_free_func(g_free);
	w->press_names = g_string_new(NULL);
	w->thread = g_thread_new("copystand", worker_run, w);
	return w;
}

/* Submits what is gathered, closes the station (what is not attached yet
 * stays in copystand's journal for the next station) and frees w. */
static void worker_stop(worker *w)
{
	GDir *d;

	worker_send(w, cmd_new(CMD_QUIT));
	g_thread_join(w->thread);
	if (w->timer) {
		g_source_destroy(w->timer);
		g_source_unref(w->timer);
	}
	g_queue_clear_full(&w->begun, begun_free);
	g_async_queue_unref(w->inbox);
	g_main_loop_unref(w->loop);
	g_main_context_unref(w->ctx);
	g_main_context_unref(w->main_ctx);
	/* Empty unless a file could not be removed after its submission. */
	if ((d = g_dir_open(w->spool, 0, NULL))) {
		const char *name;

		while ((name = g_dir_read_name(d))) {
			char *path = g_build_filename(w->spool, name, NULL);
			g_unlink(path);
			g_free(path);
		}
		g_dir_close(d);
	}
	g_rmdir(w->spool);
	g_free(w->spool);
	g_ptr_array_unref(w->press);
	g_string_free(w->press_names, TRUE);
	g_free(w->press_stem);
	g_free(w);
}

/* --- the plugin: Entangle's side, on the main thread --------------------- */

#define CS_TYPE_ENTANGLE_PLUGIN (cs_entangle_plugin_get_type())
G_DECLARE_FINAL_TYPE(CsEntanglePlugin, cs_entangle_plugin, CS, ENTANGLE_PLUGIN, GObject)

/* Our field, status line, the two choices for a held capture, the count
 * of files earlier sessions left (its popover says what to run) and the
 * log (newest first) in one of Entangle's camera windows. */
typedef struct field {
	GtkWidget *window, *box, *entry, *status, *choice[2];
	GtkWidget *earlier, *earlier_text, *log, *log_list;
	gulong on_key;
} field;

/* What the log keeps, and the status line's width (Entangle's window is
 * 1000 pixels wide by default; its own buttons and our field need the
 * rest). */
#define LOG_MAX 200
#define ENTRY_CHARS 10
#define STATUS_CHARS 50

/* Entangle's signals we hook by name, for every instance of their type. */
enum { HOOK_DOWNLOADED, HOOK_CAPTURED, HOOK_BEGIN, HOOK_END, N_HOOKS };

typedef struct hook {
	gpointer klass;        /* the type's class, held while hooked */
	guint signal;
	gulong id;
} hook;

struct _CsEntanglePlugin {
	GObject parent;
	GObject *app;          /* the EntangleApplication (weak: it owns us) */
	worker *worker;        /* non-NULL while active */
	GSimpleAction *action;
	gulong on_window_added, on_window_removed;
	hook hooks[N_HOOKS];
	gboolean warned;       /* that Entangle's captures cannot be bound at their begin */
	GList *fields;
	/* The status line: the number the next press takes, the latest news
	 * (whole for the tooltip, brief for the line), the capture held last. */
	char *next, *news, *brief;
	gboolean problem;
	copystand_held_info held;
	/* Files earlier sessions left for a person, and what to run. */
	size_t earlier;
	char *earlier_text;
	GQueue log;            /* "HH:MM:SS news", newest first */
};

enum { PROP_0, PROP_OBJECT };

#define CHOICE_KEY "copystand-choice"

static void cs_entangle_plugin_iface_init(PeasActivatableInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED(CsEntanglePlugin, cs_entangle_plugin, G_TYPE_OBJECT,
			       G_TYPE_FLAG_FINAL,
			       G_IMPLEMENT_INTERFACE_DYNAMIC(PEAS_TYPE_ACTIVATABLE,
							     cs_entangle_plugin_iface_init))

static void replace(char **slot, char *value)
{
	g_free(*slot);
	*slot = value;
}

/* A held capture's two choices: the numbers it may take ("no number" for
 * none), or, when its label disagrees, the scan's and the label's. */
static const char *choice_label(const copystand_held_info *h, int second)
{
	const char *number = second ? h->after : h->before;

	if (!h->press)
		return second ? "label's number" : "keep scan";
	return *number ? number : "no number";
}

static char *choice_tip(const copystand_held_info *h, int second)
{
	if (h->press)
		return g_strdup_printf("%s was shot as the number changed: give it %s", h->file,
				       choice_label(h, second));
	if (second)
		return g_strdup_printf("%s: its label reads %s: take that number", h->file,
				       *h->label ? h->label : "nothing readable");
	return g_strdup_printf("%s: its label disagrees with the scan: keep the scanned number",
			       h->file);
}

/* The status line, two short lines for Entangle's title bar: the number
 * the next press takes, and the latest news in brief (the whole message is
 * in its tooltip and the log); red and bold while something is wrong or
 * held.  Beside it the count of files earlier sessions left. */
static void field_show(CsEntanglePlugin *self, field *f)
{
	gboolean held = self->held.file[0] != '\0';
	char *line = g_strdup_printf("next: %s\n%s", self->next, self->brief);
	char *count = g_strdup_printf("%zu earlier", self->earlier);
	char *markup = held || self->problem ?
		g_markup_printf_escaped("<span foreground=\"#c01c28\" weight=\"bold\">%s</span>",
					line) : g_markup_escape_text(line, -1);

	gtk_label_set_markup(GTK_LABEL(f->status), markup);
	gtk_widget_set_tooltip_text(f->status, self->news);
	for (int i = 0; i < 2; i++) {
		char *tip = held ? choice_tip(&self->held, i) : NULL;

		gtk_button_set_label(GTK_BUTTON(f->choice[i]), held ? choice_label(&self->held, i) : "");
		gtk_widget_set_tooltip_text(f->choice[i], tip);
		gtk_widget_set_visible(f->choice[i], held);
		g_free(tip);
	}
	gtk_button_set_label(GTK_BUTTON(f->earlier), count);
	gtk_widget_set_tooltip_text(f->earlier, self->earlier_text);
	gtk_label_set_text(GTK_LABEL(f->earlier_text), self->earlier_text ? self->earlier_text : "");
	gtk_widget_set_visible(f->earlier, self->earlier > 0);
	g_free(count);
	g_free(markup);
	g_free(line);
}

static GtkWidget *log_line(const char *text)
{
	GtkWidget *label = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_label_set_line_wrap(GTK_LABEL(label), TRUE);
	gtk_label_set_max_width_chars(GTK_LABEL(label), 80);
	gtk_label_set_selectable(GTK_LABEL(label), TRUE);
	gtk_widget_show(label);
	return label;
}

/* A line on top of a field's log; the oldest beyond LOG_MAX go. */
static void field_log(field *f, const char *text)
{
	GtkListBoxRow *oldest;

	gtk_list_box_insert(GTK_LIST_BOX(f->log_list), log_line(text), 0);
	if ((oldest = gtk_list_box_get_row_at_index(GTK_LIST_BOX(f->log_list), LOG_MAX)))
		gtk_widget_destroy(GTK_WIDGET(oldest));
}

/* Keeps text, with the time, in every window's log. */
static void log_add(CsEntanglePlugin *self, const char *text)
{
	GDateTime *now = g_date_time_new_now_local();
	char *time = g_date_time_format(now, "%H:%M:%S");
	char *line = g_strdup_printf("%s %s", time, text);

	g_queue_push_head(&self->log, line);
	if (self->log.length > LOG_MAX)
		g_free(g_queue_pop_tail(&self->log));
	for (GList *l = self->fields; l; l = l->next)
		field_log(l->data, line);
	g_free(time);
	g_date_time_unref(now);
}

static void fields_show(CsEntanglePlugin *self)
{
	for (GList *l = self->fields; l; l = l->next)
		field_show(self, l->data);
}

static gboolean note_show(gpointer p)
{
	note *n = p;
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(n->owner);
	gboolean newly_held = FALSE;

	switch (n->kind) {
	case NOTE_NEWS:
		if (n->problem)
			g_warning("%s", n->text);
		else
			g_message("%s", n->text);
		log_add(self, n->text);
		replace(&self->news, g_steal_pointer(&n->text));
		replace(&self->brief, g_steal_pointer(&n->brief));
		self->problem = n->problem;
		break;
	case NOTE_NEXT:
		replace(&self->next, g_steal_pointer(&n->text));
		break;
	case NOTE_HELD:
		newly_held = n->held.file[0] && strcmp(n->held.file, self->held.file) != 0;
		self->held = n->held;
		break;
	case NOTE_EARLIER:
		g_message("%s", n->text);
		log_add(self, n->text);
		self->earlier = n->count;
		replace(&self->earlier_text, g_steal_pointer(&n->text));
		break;
	}
	fields_show(self);
	for (GList *l = self->fields; l && newly_held; l = l->next)
		gtk_widget_error_bell(((field *)l->data)->status);
	return G_SOURCE_REMOVE;
}

/* The field's next scan replaces what it holds, unless a person is
 * typing somewhere else in the window. */
static void field_focus(field *f)
{
	GtkWidget *focus = gtk_window_get_focus(GTK_WINDOW(f->window));

	if (focus && focus != f->entry && GTK_IS_EDITABLE(focus))
		return;
	gtk_widget_grab_focus(f->entry);
	gtk_editable_select_region(GTK_EDITABLE(f->entry), 0, -1);
}

static void hook_signals(CsEntanglePlugin *self);

static void on_number(GSimpleAction *action G_GNUC_UNUSED, GVariant *param, gpointer p)
{
	CsEntanglePlugin *self = p;
	char *text = g_strstrip(g_variant_dup_string(param, NULL));
	cmd *c;

	if (!*text) {
		g_free(text);
		return;
	}
	hook_signals(self);
	for (GList *l = self->fields; l; l = l->next) {
		field *f = l->data;

		if (strcmp(gtk_entry_get_text(GTK_ENTRY(f->entry)), text) != 0)
			gtk_entry_set_text(GTK_ENTRY(f->entry), text);
		gtk_editable_select_region(GTK_EDITABLE(f->entry), 0, -1);
	}
	c = cmd_new(CMD_NUMBER);
	c->text = text;
	c->at = (double)g_get_real_time() / G_USEC_PER_SEC;
	worker_send(self->worker, c);
}

static void on_entry_activate(GtkEntry *entry, gpointer p)
{
	CsEntanglePlugin *self = p;

	g_action_activate(G_ACTION(self->action), g_variant_new_string(gtk_entry_get_text(entry)));
	gtk_editable_select_region(GTK_EDITABLE(entry), 0, -1);
}

/* A person decided the held capture shown: the buttons hide until the
 * worker says what is held then. */
static void on_choice(GtkButton *button, gpointer p)
{
	CsEntanglePlugin *self = p;
	gboolean second = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(button), CHOICE_KEY));
	cmd *c = cmd_new(CMD_RESOLVE);

	c->choice = self->held.press ?
		(second ? COPYSTAND_NUMBER_AFTER : COPYSTAND_NUMBER_BEFORE) :
		(second ? COPYSTAND_TAKE_LABEL : COPYSTAND_KEEP_SCAN);
	c->text = g_strdup(self->held.file);
	worker_send(self->worker, c);
	self->held.file[0] = '\0';
	fields_show(self);
}

/* The number is in: the field is empty or all of it is selected, as it is
 * after Enter and after each shot. */
static gboolean field_settled(field *f)
{
	const char *text = gtk_entry_get_text(GTK_ENTRY(f->entry));
	gint start, end;

	if (!*text)
		return TRUE;
	return gtk_editable_get_selection_bounds(GTK_EDITABLE(f->entry), &start, &end) &&
	       start == 0 && end == (gint)g_utf8_strlen(text, -1);
}

/* Entangle binds plain keys (s, space: capture; p: preview) that GTK
 * would act on before the field sees them: while the field has the focus,
 * keys go to it first.  Space still shoots once the number is in, so a
 * technician can scan, then press Space. */
static gboolean on_key(GtkWidget *window, GdkEventKey *ev, gpointer p)
{
	field *f = p;

	if (gtk_window_get_focus(GTK_WINDOW(window)) != f->entry ||
	    (ev->state & (GDK_CONTROL_MASK | GDK_MOD1_MASK | GDK_SUPER_MASK)) ||
	    (ev->keyval == GDK_KEY_space && field_settled(f)))
		return GDK_EVENT_PROPAGATE;
	return gtk_window_propagate_key_event(GTK_WINDOW(window), ev);
}

/* A button in the field's box that opens a popover holding child. */
static GtkWidget *popover_button(field *f, const char *name, const char *label,
				 GtkWidget *child)
{
	GtkWidget *button = gtk_menu_button_new(), *pop = gtk_popover_new(button);

	gtk_widget_set_name(button, name);
	gtk_button_set_label(GTK_BUTTON(button), label);
	gtk_widget_set_focus_on_click(button, FALSE);
	gtk_container_set_border_width(GTK_CONTAINER(pop), 6);
	gtk_container_add(GTK_CONTAINER(pop), child);
	gtk_widget_show_all(child);
	gtk_menu_button_set_popover(GTK_MENU_BUTTON(button), pop);
	gtk_box_pack_start(GTK_BOX(f->box), button, FALSE, FALSE, 0);
	return button;
}

/* "2 earlier": shown while files earlier sessions left wait for a person;
 * its tooltip and popover say what to run (selectable, to copy). */
static void field_add_earlier(field *f)
{
	f->earlier_text = gtk_label_new(NULL);
	gtk_label_set_line_wrap(GTK_LABEL(f->earlier_text), TRUE);
	gtk_label_set_max_width_chars(GTK_LABEL(f->earlier_text), 60);
	gtk_label_set_selectable(GTK_LABEL(f->earlier_text), TRUE);
	f->earlier = popover_button(f, "copystand-earlier", NULL, f->earlier_text);
	gtk_widget_set_no_show_all(f->earlier, TRUE);
}

/* The log: every message whole, newest first. */
static void field_add_log(CsEntanglePlugin *self, field *f)
{
	GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);

	f->log_list = gtk_list_box_new();
	gtk_list_box_set_selection_mode(GTK_LIST_BOX(f->log_list), GTK_SELECTION_NONE);
	gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER,
				       GTK_POLICY_AUTOMATIC);
	gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(scroll), 300);
	gtk_container_add(GTK_CONTAINER(scroll), f->log_list);
	for (GList *l = self->log.tail; l; l = l->prev)
		field_log(f, l->data);
	f->log = popover_button(f, "copystand-log", NULL, scroll);
	gtk_button_set_image(GTK_BUTTON(f->log),
			     gtk_image_new_from_icon_name("view-list-symbolic", GTK_ICON_SIZE_BUTTON));
	gtk_widget_set_tooltip_text(f->log, "copystand: everything it said, newest first");
}

static gboolean is_camera_window(gpointer window)
{
	GType t = g_type_from_name("EntangleCameraManager");

	return t && g_type_is_a(G_OBJECT_TYPE(window), t);
}

static void on_window_added(GtkApplication *app G_GNUC_UNUSED, GtkWindow *window, gpointer p)
{
	CsEntanglePlugin *self = p;
	GtkWidget *bar = gtk_window_get_titlebar(window);
	field *f;

	if (!is_camera_window(window))
		return;
	hook_signals(self);
	if (!GTK_IS_HEADER_BAR(bar)) {
		g_warning("no title bar in this Entangle window for the catalog-number field; "
			  "set numbers with: gapplication action %s %s \"'NUMBER'\"",
			  g_application_get_application_id(G_APPLICATION(self->app)), NUMBER_ACTION);
		return;
	}
	f = g_new0(field, 1);
	f->window = GTK_WIDGET(window);
	f->box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 2);
	f->entry = gtk_entry_new();
	gtk_entry_set_placeholder_text(GTK_ENTRY(f->entry), "scan label");
	gtk_entry_set_width_chars(GTK_ENTRY(f->entry), ENTRY_CHARS);
	gtk_widget_set_tooltip_text(f->entry, "copystand: the catalog number that names "
				    "the next shots (scan a label or type it, then Enter)");
	f->status = gtk_label_new(NULL);
	gtk_label_set_ellipsize(GTK_LABEL(f->status), PANGO_ELLIPSIZE_END);
	gtk_label_set_max_width_chars(GTK_LABEL(f->status), STATUS_CHARS);
	gtk_label_set_xalign(GTK_LABEL(f->status), 0);
	gtk_box_pack_start(GTK_BOX(f->box), f->entry, FALSE, FALSE, 0);
	gtk_box_pack_start(GTK_BOX(f->box), f->status, FALSE, FALSE, 0);
	for (int i = 0; i < 2; i++) {
		f->choice[i] = gtk_button_new();
		g_object_set_data(G_OBJECT(f->choice[i]), CHOICE_KEY, GINT_TO_POINTER(i));
		/* Shown only while a capture is held; the next scan still
		 * lands in the field. */
		gtk_widget_set_no_show_all(f->choice[i], TRUE);
		gtk_widget_set_focus_on_click(f->choice[i], FALSE);
		g_signal_connect(f->choice[i], "clicked", G_CALLBACK(on_choice), self);
		gtk_box_pack_start(GTK_BOX(f->box), f->choice[i], FALSE, FALSE, 0);
	}
	field_add_earlier(f);
	field_add_log(self, f);
	gtk_header_bar_pack_end(GTK_HEADER_BAR(bar), f->box);
	gtk_widget_show_all(f->box);
	field_show(self, f);
	g_signal_connect(f->entry, "activate", G_CALLBACK(on_entry_activate), self);
	f->on_key = g_signal_connect(window, "key-press-event", G_CALLBACK(on_key), f);
	self->fields = g_list_append(self->fields, f);
	field_focus(f);
}

/* Entangle destroys the window: our widgets go with it. */
static void on_window_removed(GtkApplication *app G_GNUC_UNUSED, GtkWindow *window, gpointer p)
{
	CsEntanglePlugin *self = p;

	for (GList *l = self->fields; l; l = l->next) {
		field *f = l->data;

		if (f->window == GTK_WIDGET(window)) {
			g_signal_handler_disconnect(window, f->on_key);
			self->fields = g_list_delete_link(self->fields, l);
			g_free(f);
			return;
		}
	}
}

static void field_remove(gpointer p)
{
	field *f = p;

	g_signal_handler_disconnect(f->window, f->on_key);
	gtk_widget_destroy(f->box);
	g_free(f);
}

static gboolean has_property(GObject *o, const char *name, GType type)
{
	GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(o), name);

	return ps && g_type_is_a(ps->value_type, type);
}

/* The EntangleCameraFile a camera signal carries, if it has a name. */
static GObject *signal_file(guint n, const GValue *values)
{
	GObject *file = n == 2 && G_VALUE_HOLDS_OBJECT(&values[1]) ?
		g_value_get_object(&values[1]) : NULL;

	return file && has_property(file, "name", G_TYPE_STRING) ? file : NULL;
}

static char *stem_of(const char *name)
{
	return g_strndup(name, strcspn(name, "."));
}

/* Whether Entangle's own captures are bound at their begin: it needs all
 * three signals, else a capture that failed could lend its number. */
static gboolean binds_presses(const CsEntanglePlugin *self)
{
	return self->hooks[HOOK_BEGIN].id && self->hooks[HOOK_CAPTURED].id &&
	       self->hooks[HOOK_END].id;
}

/* Until they are, Entangle's captures go in as the camera button's: said
 * once. */
static void check_binding(CsEntanglePlugin *self)
{
	if (binds_presses(self))
		return;
	hook_signals(self);
	if (binds_presses(self) || self->warned)
		return;
	self->warned = TRUE;
	g_warning("this program has no EntangleCameraAutomata::camera-capture-begin and -end "
		  "or EntangleCamera::camera-file-captured as Entangle 3.0 has: its captures "
		  "are named as the camera button's are, from the time they were shot, or held");
}

/* EntangleCamera::camera-file-downloaded, for every camera: the file holds
 * the image in memory (Entangle writes its own copy after this). */
static gboolean on_downloaded(GSignalInvocationHint *hint G_GNUC_UNUSED, guint n,
			      const GValue *values, gpointer p)
{
	CsEntanglePlugin *self = p;
	GObject *file = signal_file(n, values);
	cmd *c;

	check_binding(self);
	if (!file || !has_property(file, "data", G_TYPE_BYTE_ARRAY)) {
		g_warning("a capture this version of Entangle announced has no name or data "
			  "that copystand can read; it was not given to copystand");
		return TRUE;
	}
	c = cmd_new(CMD_FILE);
	g_object_get(file, "name", &c->text, "data", &c->data, NULL);
	if (!c->text || !c->data) {
		g_warning("Entangle announced a capture without %s; it was not given to copystand",
			  c->text ? "its image data" : "a name");
		cmd_free(c);
		return TRUE;
	}
	c->stem = stem_of(c->text);
	worker_send(self->worker, c);
	for (GList *l = self->fields; l; l = l->next)
		field_focus(l->data);
	return TRUE;
}

/* EntangleCamera::camera-file-captured: the camera took the shot Entangle
 * asked for, and names its file (still on the camera). */
static gboolean on_captured(GSignalInvocationHint *hint G_GNUC_UNUSED, guint n,
			    const GValue *values, gpointer p)
{
	CsEntanglePlugin *self = p;
	GObject *file = signal_file(n, values);
	char *name = NULL;
	cmd *c;

	if (file)
		g_object_get(file, "name", &name, NULL);
	if (name) {
		c = cmd_new(CMD_CAPTURED);
		c->stem = stem_of(name);
		worker_send(self->worker, c);
	}
	g_free(name);
	return TRUE;
}

/* EntangleCameraAutomata::camera-capture-begin: Entangle asks the camera
 * to fire now; the shot takes the number current now, so the worker
 * notes it in order with the scans.  (Without a begun capture, the
 * captured files and ends that follow are nothing to the worker.) */
static gboolean on_begin(GSignalInvocationHint *hint G_GNUC_UNUSED, guint n G_GNUC_UNUSED,
			 const GValue *values G_GNUC_UNUSED, gpointer p)
{
	CsEntanglePlugin *self = p;
	cmd *c;

	if (binds_presses(self)) {
		c = cmd_new(CMD_BEGIN);
		c->at = (double)g_get_real_time() / G_USEC_PER_SEC;
		worker_send(self->worker, c);
	}
	return TRUE;
}

static gboolean send_end(gpointer p)
{
	CsEntanglePlugin *self = p;

	if (self->worker)
		worker_send(self->worker, cmd_new(CMD_END));
	return G_SOURCE_REMOVE;
}

/* EntangleCameraAutomata::camera-capture-end.  Entangle emits the
 * captured file from an idle callback but ends the capture from its
 * completion, at a higher priority and so often first: the end goes to
 * the worker after the idle callbacks queued before it, when its file,
 * if any, is named. */
static gboolean on_end(GSignalInvocationHint *hint G_GNUC_UNUSED, guint n G_GNUC_UNUSED,
		       const GValue *values G_GNUC_UNUSED, gpointer p)
{
	g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, send_end, g_object_ref(p), g_object_unref);
	return TRUE;
}

static const struct {
	const char *type, *signal;
	guint n_params;        /* 1: an EntangleCameraFile; 0: none */
	GSignalEmissionHook func;
} hooked[N_HOOKS] = {
	[HOOK_DOWNLOADED] = { "EntangleCamera", "camera-file-downloaded", 1, on_downloaded },
	[HOOK_CAPTURED] = { "EntangleCamera", "camera-file-captured", 1, on_captured },
	[HOOK_BEGIN] = { "EntangleCameraAutomata", "camera-capture-begin", 0, on_begin },
	[HOOK_END] = { "EntangleCameraAutomata", "camera-capture-end", 0, on_end },
};

/* Hooks each signal not hooked yet whose type exists by now: Entangle
 * may register EntangleCameraAutomata after the plugin loads, with its
 * first camera window or camera, so this runs again at each window, scan
 * and download. */
static void hook_signals(CsEntanglePlugin *self)
{
	for (int i = 0; i < N_HOOKS; i++) {
		GType type = g_type_from_name(hooked[i].type);
		hook *h = &self->hooks[i];
		GSignalQuery q = { 0 };

		if (h->id || !type)
			continue;
		h->klass = g_type_class_ref(type);   /* its signals exist from here */
		if ((h->signal = g_signal_lookup(hooked[i].signal, type)))
			g_signal_query(h->signal, &q);
		if (!h->signal || q.n_params != hooked[i].n_params ||
		    (q.n_params && !G_TYPE_IS_OBJECT(q.param_types[0] & ~G_SIGNAL_TYPE_STATIC_SCOPE))) {
			g_clear_pointer(&h->klass, g_type_class_unref);
			h->signal = 0;
			continue;
		}
		h->id = g_signal_add_emission_hook(h->signal, 0, hooked[i].func, self, NULL);
	}
}

static void unhook_signals(CsEntanglePlugin *self)
{
	for (int i = 0; i < N_HOOKS; i++) {
		hook *h = &self->hooks[i];

		if (h->id)
			g_signal_remove_emission_hook(h->signal, h->id);
		g_clear_pointer(&h->klass, g_type_class_unref);
		*h = (hook){ 0 };
	}
	self->warned = FALSE;
}

static void cs_entangle_plugin_activate(PeasActivatable *activatable)
{
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(activatable);

	if (self->worker)
		return;
	if (!GTK_IS_APPLICATION(self->app)) {
		g_warning("copystand is off: the plugin was not given Entangle's application");
		return;
	}
	if (!(self->worker = worker_start(G_OBJECT(self))))
		return;
	replace(&self->next, g_strdup("no number"));
	self->earlier = 0;
	g_clear_pointer(&self->earlier_text, g_free);
	replace(&self->news, g_strdup("copystand is starting…"));
	replace(&self->brief, g_strdup(self->news));
	self->problem = FALSE;
	memset(&self->held, 0, sizeof self->held);
	self->action = g_simple_action_new(NUMBER_ACTION, G_VARIANT_TYPE_STRING);
	g_signal_connect(self->action, "activate", G_CALLBACK(on_number), self);
	g_action_map_add_action(G_ACTION_MAP(self->app), G_ACTION(self->action));
	hook_signals(self);
	if (!self->hooks[HOOK_DOWNLOADED].id)
		g_warning("this program has no EntangleCamera::camera-file-downloaded as "
			  "Entangle 3.0 has: captures will not reach copystand");
	self->on_window_added = g_signal_connect(self->app, "window-added",
						 G_CALLBACK(on_window_added), self);
	self->on_window_removed = g_signal_connect(self->app, "window-removed",
						   G_CALLBACK(on_window_removed), self);
	for (GList *l = gtk_application_get_windows(GTK_APPLICATION(self->app)); l; l = l->next)
		on_window_added(GTK_APPLICATION(self->app), l->data, self);
}

static void cs_entangle_plugin_deactivate(PeasActivatable *activatable)
{
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(activatable);

	if (!self->worker)
		return;
	unhook_signals(self);
	g_list_free_full(g_steal_pointer(&self->fields), field_remove);
	/* Entangle quitting: the application is gone, and our handlers and
	 * action with it. */
	if (self->app) {
		g_clear_signal_handler(&self->on_window_added, self->app);
		g_clear_signal_handler(&self->on_window_removed, self->app);
		g_action_map_remove_action(G_ACTION_MAP(self->app), NUMBER_ACTION);
	}
	g_clear_object(&self->action);
	worker_stop(g_steal_pointer(&self->worker));
}

static void cs_entangle_plugin_set_property(GObject *o, guint id, const GValue *v,
					    GParamSpec *ps)
{
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(o);

	if (id == PROP_OBJECT)
		g_set_weak_pointer(&self->app, g_value_get_object(v));
	else
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
}

static void cs_entangle_plugin_get_property(GObject *o, guint id, GValue *v, GParamSpec *ps)
{
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(o);

	if (id == PROP_OBJECT)
		g_value_set_object(v, self->app);
	else
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
}

static void cs_entangle_plugin_dispose(GObject *o)
{
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(o);

	cs_entangle_plugin_deactivate(PEAS_ACTIVATABLE(o));
	g_clear_weak_pointer(&self->app);
	G_OBJECT_CLASS(cs_entangle_plugin_parent_class)->dispose(o);
}

static void cs_entangle_plugin_finalize(GObject *o)
{
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(o);

	g_free(self->next);
	g_free(self->news);
	g_free(self->brief);
	g_free(self->earlier_text);
	g_queue_clear_full(&self->log, g_free);
	G_OBJECT_CLASS(cs_entangle_plugin_parent_class)->finalize(o);
}

static void cs_entangle_plugin_class_init(CsEntanglePluginClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);

	oc->set_property = cs_entangle_plugin_set_property;
	oc->get_property = cs_entangle_plugin_get_property;
	oc->dispose = cs_entangle_plugin_dispose;
	oc->finalize = cs_entangle_plugin_finalize;
	g_object_class_override_property(oc, PROP_OBJECT, "object");
}

static void cs_entangle_plugin_class_finalize(CsEntanglePluginClass *klass G_GNUC_UNUSED)
{
}

static void cs_entangle_plugin_init(CsEntanglePlugin *self G_GNUC_UNUSED)
{
}

static void cs_entangle_plugin_iface_init(PeasActivatableInterface *iface)
{
	iface->activate = cs_entangle_plugin_activate;
	iface->deactivate = cs_entangle_plugin_deactivate;
}

G_MODULE_EXPORT void peas_register_types(PeasObjectModule *module);

G_MODULE_EXPORT void peas_register_types(PeasObjectModule *module)
{
	cs_entangle_plugin_register_type(G_TYPE_MODULE(module));
	peas_object_module_register_extension_type(module, PEAS_TYPE_ACTIVATABLE,
						   CS_TYPE_ENTANGLE_PLUGIN);
}
