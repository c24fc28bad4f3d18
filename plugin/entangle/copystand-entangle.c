/* copystand-entangle.c — the Entangle plugin (docs/plugins.md): every
 * capture Entangle downloads goes to copystand, named from the catalog
 * number scanned into a field in Entangle's title bar, and is attached to
 * its record in Specify in the background.
 *
 * Entangle ships no headers, so all of Entangle is reached by name: the
 * types EntangleCamera and EntangleCameraManager, the camera's signal
 * "camera-file-downloaded" and its file's properties "name" and "data".
 * The rest is libpeas, GTK 3 and copystand.h.
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

/* --- the worker: our thread, owner of the copystand station ------------- */

enum cmd_kind { CMD_NUMBER, CMD_FILE, CMD_QUIT };

typedef struct cmd {
	enum cmd_kind kind;
	char *text;          /* NUMBER: as scanned; FILE: the camera's file name */
	char *stem;          /* FILE: its name to the first dot (a dual-slot camera
			      * may put RAW and JPEG in different folders) */
	GByteArray *data;    /* FILE: the image, as Entangle downloaded it */
} cmd;

typedef struct worker {
	GObject *owner;      /* the plugin, for notes to the main thread */
	GMainContext *main_ctx, *ctx;
	GMainLoop *loop;
	GThread *thread;
	GAsyncQueue *inbox;  /* cmds from the main thread, in time order */
	GQueue todo;         /* cmds taken from the inbox, not yet done */
	copystand *cs;
	GSource *events;     /* watches copystand_event_fd */
	char *spool;         /* private folder for the images until copystand copies them */
	GPtrArray *press;    /* spool paths of the press being gathered */
	GString *press_names;
	char *press_stem;
	gint64 press_until;
	GSource *timer;
} worker;

typedef struct note {
	GObject *owner;
	gboolean problem;
	char *text;
} note;

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

static void note_free(gpointer p)
{
	note *n = p;

	g_object_unref(n->owner);
	g_free(n->text);
	g_free(n);
}

static gboolean note_show(gpointer p);

/* Tells the technician, from any thread (shown on the main thread). */
G_GNUC_PRINTF(3, 4)
static void post(worker *w, gboolean problem, const char *fmt, ...)
{
	note *n = g_new0(note, 1);
	va_list ap;

	va_start(ap, fmt);
	n->text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	n->owner = g_object_ref(w->owner);
	n->problem = problem;
	g_main_context_invoke_full(w->main_ctx, G_PRIORITY_DEFAULT, note_show, n, note_free);
}

static gboolean on_events(gint fd G_GNUC_UNUSED, GIOCondition cond G_GNUC_UNUSED,
			  gpointer p)
{
	worker *w = p;
	copystand_event ev;

	while (copystand_next_event(w->cs, &ev) == 1)
		post(w, ev.kind == COPYSTAND_EVENT_PROBLEM || ev.kind == COPYSTAND_EVENT_OFFLINE,
		     "%s", ev.message);
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
	post(w, FALSE, "copystand is ready: scan a label, then shoot");
	return 0;
}

static void set_number(worker *w, const char *text)
{
	char err[512] = "";

	if (ensure_open(w, err, sizeof err) == 0 &&
	    copystand_set_catalog_number(w->cs, text, err, sizeof err) != 0)
		post(w, TRUE, "%s: %s", text, err);
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
	if (c->kind != CMD_FILE || strcmp(c->stem, w->press_stem) != 0)
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

static void press_submit(worker *w)
{
	char err[512] = "", *name = NULL;

	if (ensure_open(w, err, sizeof err) == 0 &&
	    copystand_submit_files(w->cs, (const char *const *)w->press->pdata, w->press->len,
				   &name, err, sizeof err) == 0)
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

static gboolean on_timer(gpointer p);

/* Does the waiting commands in order.  A press being gathered takes the
 * files of its stem even from behind a later scan (they were shot before
 * it) and holds the other commands back until it is complete, another
 * press begins, PRESS_WAIT_US pass or we quit. */
static void work(worker *w)
{
	cmd *c;

	while ((c = g_async_queue_try_pop(w->inbox)))
		g_queue_push_tail(&w->todo, c);
	if (w->timer) {
		g_source_destroy(w->timer);
		g_clear_pointer(&w->timer, g_source_unref);
	}
	for (;;) {
		if (w->press_stem) {
			gboolean next_press = FALSE;

			for (GList *l = w->todo.head, *next; l; l = next) {
				next = l->next;
				c = l->data;
				if (in_press(w, c)) {
					press_add(w, c);
					cmd_free(c);
					g_queue_delete_link(&w->todo, l);
				} else if (c->kind != CMD_NUMBER) {
					next_press = TRUE;
				}
			}
			gint64 left = w->press_until - g_get_monotonic_time();
			if (!next_press && !press_complete(w) && left > 0) {
				w->timer = g_timeout_source_new((guint)(left / 1000) + 1);
				g_source_set_callback(w->timer, on_timer, w, NULL);
				g_source_attach(w->timer, w->ctx);
				return;
			}
			press_submit(w);
		}
		if (!(c = g_queue_pop_head(&w->todo)))
			return;
		switch (c->kind) {
		case CMD_NUMBER:
			set_number(w, c->text);
			break;
		case CMD_FILE:
			press_add(w, c);
			break;
		case CMD_QUIT:
			g_main_loop_quit(w->loop);
			break;
		}
		cmd_free(c);
	}
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
	g_queue_init(&w->todo);
	w->press = g_ptr_array_new_with_free_func(g_free);
	w->press_names = g_string_new(NULL);
	w->thread = g_thread_new("copystand", worker_run, w);
	return w;
}

/* Submits what is gathered, closes the station (what is not attached yet
 * stays in copystand's journal for the next station) and frees w. */
static void worker_stop(worker *w)
{
	cmd *quit = g_new0(cmd, 1);
	GDir *d;

	quit->kind = CMD_QUIT;
	worker_send(w, quit);
	g_thread_join(w->thread);
	if (w->timer) {
		g_source_destroy(w->timer);
		g_source_unref(w->timer);
	}
	g_queue_clear_full(&w->todo, cmd_free);
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

/* Our field and status line in one of Entangle's camera windows. */
typedef struct field {
	GtkWidget *window, *box, *entry, *status;
	gulong on_key;
} field;

struct _CsEntanglePlugin {
	GObject parent;
	GObject *app;          /* the EntangleApplication (weak: it owns us) */
	worker *worker;        /* non-NULL while active */
	GSimpleAction *action;
	gulong on_window_added, on_window_removed;
	gpointer camera_class; /* EntangleCamera's, held while we hook its signal */
	guint downloaded;      /* its "camera-file-downloaded" signal */
	gulong hook;
	GList *fields;
};

enum { PROP_0, PROP_OBJECT };

static void cs_entangle_plugin_iface_init(PeasActivatableInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED(CsEntanglePlugin, cs_entangle_plugin, G_TYPE_OBJECT,
			       G_TYPE_FLAG_FINAL,
			       G_IMPLEMENT_INTERFACE_DYNAMIC(PEAS_TYPE_ACTIVATABLE,
							     cs_entangle_plugin_iface_init))

static void field_status(field *f, const char *text, gboolean problem)
{
	char *markup = problem ? g_markup_printf_escaped("<span foreground=\"#c01c28\" "
							  "weight=\"bold\">%s</span>", text)
			       : g_markup_escape_text(text, -1);

	gtk_label_set_markup(GTK_LABEL(f->status), markup);
	gtk_widget_set_tooltip_text(f->status, text);
	g_free(markup);
}

static gboolean note_show(gpointer p)
{
	note *n = p;
	CsEntanglePlugin *self = CS_ENTANGLE_PLUGIN(n->owner);

	if (n->problem)
		g_warning("%s", n->text);
	else
		g_message("%s", n->text);
	for (GList *l = self->fields; l; l = l->next)
		field_status(l->data, n->text, n->problem);
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

static void on_number(GSimpleAction *action G_GNUC_UNUSED, GVariant *param, gpointer p)
{
	CsEntanglePlugin *self = p;
	char *text = g_strstrip(g_variant_dup_string(param, NULL));
	cmd *c;

	if (!*text) {
		g_free(text);
		return;
	}
	for (GList *l = self->fields; l; l = l->next) {
		field *f = l->data;
		char *shown = g_strdup_printf("%s: checking…", text);

		if (strcmp(gtk_entry_get_text(GTK_ENTRY(f->entry)), text) != 0)
			gtk_entry_set_text(GTK_ENTRY(f->entry), text);
		gtk_editable_select_region(GTK_EDITABLE(f->entry), 0, -1);
		field_status(f, shown, FALSE);
		g_free(shown);
	}
	c = g_new0(cmd, 1);
	c->kind = CMD_NUMBER;
	c->text = text;
	worker_send(self->worker, c);
}

static void on_entry_activate(GtkEntry *entry, gpointer p)
{
	CsEntanglePlugin *self = p;

	g_action_activate(G_ACTION(self->action), g_variant_new_string(gtk_entry_get_text(entry)));
	gtk_editable_select_region(GTK_EDITABLE(entry), 0, -1);
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
	if (!GTK_IS_HEADER_BAR(bar)) {
		g_warning("no title bar in this Entangle window for the catalog-number field; "
			  "set numbers with: gapplication action %s %s \"'NUMBER'\"",
			  g_application_get_application_id(G_APPLICATION(self->app)), NUMBER_ACTION);
		return;
	}
	f = g_new0(field, 1);
	f->window = GTK_WIDGET(window);
	f->box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	f->entry = gtk_entry_new();
	gtk_entry_set_placeholder_text(GTK_ENTRY(f->entry), "scan a label");
	gtk_entry_set_width_chars(GTK_ENTRY(f->entry), 16);
	gtk_widget_set_tooltip_text(f->entry, "copystand: the catalog number that names "
				    "the next shots (scan a label or type it, then Enter)");
	f->status = gtk_label_new(NULL);
	gtk_label_set_ellipsize(GTK_LABEL(f->status), PANGO_ELLIPSIZE_END);
	gtk_label_set_max_width_chars(GTK_LABEL(f->status), 48);
	gtk_box_pack_start(GTK_BOX(f->box), f->entry, FALSE, FALSE, 0);
	gtk_box_pack_start(GTK_BOX(f->box), f->status, FALSE, FALSE, 0);
	gtk_header_bar_pack_end(GTK_HEADER_BAR(bar), f->box);
	gtk_widget_show_all(f->box);
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

/* EntangleCamera::camera-file-downloaded, for every camera: the file holds
 * the image in memory (Entangle writes its own copy after this). */
static gboolean on_downloaded(GSignalInvocationHint *hint G_GNUC_UNUSED, guint n,
			      const GValue *values, gpointer p)
{
	CsEntanglePlugin *self = p;
	GObject *file = n == 2 && G_VALUE_HOLDS_OBJECT(&values[1]) ?
		g_value_get_object(&values[1]) : NULL;
	cmd *c;

	if (!file || !has_property(file, "name", G_TYPE_STRING) ||
	    !has_property(file, "data", G_TYPE_BYTE_ARRAY)) {
		g_warning("a capture this version of Entangle announced has no name or data "
			  "that copystand can read; it was not given to copystand");
		return TRUE;
	}
	c = g_new0(cmd, 1);
	c->kind = CMD_FILE;
	g_object_get(file, "name", &c->text, "data", &c->data, NULL);
	if (!c->text || !c->data) {
		g_warning("Entangle announced a capture without %s; it was not given to copystand",
			  c->text ? "its image data" : "a name");
		cmd_free(c);
		return TRUE;
	}
	c->stem = g_strndup(c->text, strcspn(c->text, "."));
	worker_send(self->worker, c);
	for (GList *l = self->fields; l; l = l->next)
		field_focus(l->data);
	return TRUE;
}

static void hook_downloads(CsEntanglePlugin *self)
{
	GType camera = g_type_from_name("EntangleCamera");
	GSignalQuery q = { 0 };

	if (camera) {
		self->camera_class = g_type_class_ref(camera);
		self->downloaded = g_signal_lookup("camera-file-downloaded", camera);
		if (self->downloaded)
			g_signal_query(self->downloaded, &q);
	}
	if (!self->downloaded || q.n_params != 1 ||
	    !G_TYPE_IS_OBJECT(q.param_types[0] & ~G_SIGNAL_TYPE_STATIC_SCOPE)) {
		g_warning("this program has no EntangleCamera::camera-file-downloaded as "
			  "Entangle 3.0 has: captures will not reach copystand");
		g_clear_pointer(&self->camera_class, g_type_class_unref);
		self->downloaded = 0;
		return;
	}
	self->hook = g_signal_add_emission_hook(self->downloaded, 0, on_downloaded, self, NULL);
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
	self->action = g_simple_action_new(NUMBER_ACTION, G_VARIANT_TYPE_STRING);
	g_signal_connect(self->action, "activate", G_CALLBACK(on_number), self);
	g_action_map_add_action(G_ACTION_MAP(self->app), G_ACTION(self->action));
	hook_downloads(self);
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
	if (self->hook)
		g_signal_remove_emission_hook(self->downloaded, self->hook);
	self->hook = 0;
	self->downloaded = 0;
	g_clear_pointer(&self->camera_class, g_type_class_unref);
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

static void cs_entangle_plugin_class_init(CsEntanglePluginClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);

	oc->set_property = cs_entangle_plugin_set_property;
	oc->get_property = cs_entangle_plugin_get_property;
	oc->dispose = cs_entangle_plugin_dispose;
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
