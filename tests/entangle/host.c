/* host.c — Entangle 3.0 as its plugins see it (host.h).  Type, property and
 * signal names as in Entangle 3.0's introspection data (Entangle-0.1.gir
 * of Debian's gir1.2-entangle-0.1); the plugin engine is set up as
 * entangle_application_init does it (src/frontend/entangle-application.c),
 * files are announced as entangle_camera_capture_image and
 * entangle_camera_download_file do (src/backend/entangle-camera.c): from an
 * idle callback, bytes in memory, and captures run as
 * entangle_camera_automata_capture_async runs them
 * (src/backend/entangle-camera-automata.c). */
#include "host.h"

/* --- EntangleCameraFile: a file on the camera, and its bytes once
 * downloaded (Entangle's also has "folder" and "mimetype") ------------------ */

G_DECLARE_FINAL_TYPE(EntangleCameraFile, entangle_camera_file, ENTANGLE, CAMERA_FILE, GObject)

struct _EntangleCameraFile {
	GObject parent;
	char *name;
	GByteArray *data;
};

G_DEFINE_TYPE(EntangleCameraFile, entangle_camera_file, G_TYPE_OBJECT)

enum { FILE_PROP_0, FILE_PROP_NAME, FILE_PROP_DATA };

static void camera_file_set_property(GObject *o, guint id, const GValue *v, GParamSpec *ps)
{
	EntangleCameraFile *f = ENTANGLE_CAMERA_FILE(o);

	if (id == FILE_PROP_NAME) {
		g_free(f->name);
		f->name = g_value_dup_string(v);
	} else if (id == FILE_PROP_DATA) {
		if (f->data)
			g_byte_array_unref(f->data);
		f->data = g_value_dup_boxed(v);
	} else {
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
	}
}

static void camera_file_get_property(GObject *o, guint id, GValue *v, GParamSpec *ps)
{
	EntangleCameraFile *f = ENTANGLE_CAMERA_FILE(o);

	if (id == FILE_PROP_NAME)
		g_value_set_string(v, f->name);
	else if (id == FILE_PROP_DATA)
		g_value_set_boxed(v, f->data);
	else
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
}

static void camera_file_finalize(GObject *o)
{
	EntangleCameraFile *f = ENTANGLE_CAMERA_FILE(o);

	g_free(f->name);
	if (f->data)
		g_byte_array_unref(f->data);
	G_OBJECT_CLASS(entangle_camera_file_parent_class)->finalize(o);
}

static void entangle_camera_file_class_init(EntangleCameraFileClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);

	oc->set_property = camera_file_set_property;
	oc->get_property = camera_file_get_property;
	oc->finalize = camera_file_finalize;
	g_object_class_install_property(oc, FILE_PROP_NAME,
		g_param_spec_string("name", "Camera file name", "File name on the camera", NULL,
				    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
				    G_PARAM_STATIC_STRINGS));
	g_object_class_install_property(oc, FILE_PROP_DATA,
		g_param_spec_boxed("data", "Profile data", "Raw data for the file",
				   G_TYPE_BYTE_ARRAY, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
}

static void entangle_camera_file_init(EntangleCameraFile *f G_GNUC_UNUSED)
{
}

/* --- EntangleCamera: announces each file it shot and downloaded ----------- */

G_DECLARE_FINAL_TYPE(EntangleCamera, entangle_camera, ENTANGLE, CAMERA, GObject)

struct _EntangleCamera {
	GObject parent;
};

G_DEFINE_TYPE(EntangleCamera, entangle_camera, G_TYPE_OBJECT)

static void entangle_camera_class_init(EntangleCameraClass *klass)
{
	static const char *const signals[] = { "camera-file-captured", "camera-file-downloaded" };

	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++)
		g_signal_new(signals[i], G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_FIRST, 0, NULL,
			     NULL, g_cclosure_marshal_VOID__OBJECT, G_TYPE_NONE, 1,
			     entangle_camera_file_get_type());
}

static void entangle_camera_init(EntangleCamera *c G_GNUC_UNUSED)
{
}

GObject *host_camera_new(void)
{
	return g_object_new(entangle_camera_get_type(), NULL);
}

typedef struct deferred {
	GObject *camera, *file;
	const char *signal;
} deferred;

static gboolean emit_deferred(gpointer p)
{
	deferred *d = p;

	g_signal_emit_by_name(d->camera, d->signal, d->file);
	g_object_unref(d->camera);
	g_object_unref(d->file);
	g_free(d);
	return G_SOURCE_REMOVE;
}

/* As entangle_camera_emit_deferred, which the camera's thread calls: the
 * signal comes from an idle callback on the main loop. */
static void defer(GObject *camera, const char *signal, GObject *file)
{
	deferred *d = g_new0(deferred, 1);

	d->camera = g_object_ref(camera);
	d->file = g_object_ref(file);
	d->signal = signal;
	g_idle_add(emit_deferred, d);
}

void host_camera_download(GObject *camera, const char *name, GByteArray *data)
{
	GObject *file = g_object_new(entangle_camera_file_get_type(), "name", name, "data", data,
				     NULL);

	defer(camera, "camera-file-downloaded", file);
	g_object_unref(file);
}

/* --- EntangleCameraAutomata: runs the captures of a camera window (its
 * camera is a property in Entangle's, and it has a session) ------------- */

G_DECLARE_FINAL_TYPE(EntangleCameraAutomata, entangle_camera_automata, ENTANGLE,
		     CAMERA_AUTOMATA, GObject)

struct _EntangleCameraAutomata {
	GObject parent;
	GObject *camera;
};

G_DEFINE_TYPE(EntangleCameraAutomata, entangle_camera_automata, G_TYPE_OBJECT)

static void automata_dispose(GObject *o)
{
	g_clear_object(&ENTANGLE_CAMERA_AUTOMATA(o)->camera);
	G_OBJECT_CLASS(entangle_camera_automata_parent_class)->dispose(o);
}

static void entangle_camera_automata_class_init(EntangleCameraAutomataClass *klass)
{
	static const char *const signals[] = { "camera-capture-begin", "camera-capture-end" };

	G_OBJECT_CLASS(klass)->dispose = automata_dispose;
	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++)
		g_signal_new(signals[i], G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_FIRST, 0, NULL,
			     NULL, g_cclosure_marshal_VOID__VOID, G_TYPE_NONE, 0);
}

static void entangle_camera_automata_init(EntangleCameraAutomata *a G_GNUC_UNUSED)
{
}

GObject *host_automata_new(GObject *camera)
{
	EntangleCameraAutomata *a = g_object_new(entangle_camera_automata_get_type(), NULL);

	a->camera = g_object_ref(camera);
	return G_OBJECT(a);
}

typedef struct capture_job {
	EntangleCameraAutomata *automata;
	GObject *file;          /* NULL: the camera fails */
	GByteArray *data;
	guint transfer_ms;
} capture_job;

static void capture_free(capture_job *c)
{
	g_object_unref(c->automata);
	g_clear_object(&c->file);
	g_clear_pointer(&c->data, g_byte_array_unref);
	g_free(c);
}

/* The download of the captured file is done. */
static gboolean capture_downloaded(gpointer p)
{
	capture_job *c = p;

	g_object_set(c->file, "data", c->data, NULL);
	defer(c->automata->camera, "camera-file-downloaded", c->file);
	capture_free(c);
	return G_SOURCE_REMOVE;
}

/* The automaton's completion callback: the capture ends, its file is
 * downloaded. */
static gboolean capture_end(gpointer p)
{
	capture_job *c = p;

	g_signal_emit_by_name(c->automata, "camera-capture-end");
	if (c->file)
		g_timeout_add(c->transfer_ms, capture_downloaded, c);
	else
		capture_free(c);
	return G_SOURCE_REMOVE;
}

/* gp_camera_capture returned in the camera's thread, which defers
 * "camera-file-captured" and then completes the task, whose callback
 * runs at default priority: before the idle callback. */
static gboolean capture_shot(gpointer p)
{
	capture_job *c = p;

	if (c->file)
		defer(c->automata->camera, "camera-file-captured", c->file);
	g_idle_add_full(G_PRIORITY_DEFAULT, capture_end, c, NULL);
	return G_SOURCE_REMOVE;
}

void host_capture(GObject *automata, const char *name, GByteArray *data, double shutter_s,
		  double transfer_s)
{
	capture_job *c = g_new0(capture_job, 1);

	c->automata = ENTANGLE_CAMERA_AUTOMATA(g_object_ref(automata));
	if (name) {
		c->file = g_object_new(entangle_camera_file_get_type(), "name", name, NULL);
		c->data = g_byte_array_ref(data);
	}
	c->transfer_ms = (guint)(transfer_s * 1000);
	g_signal_emit_by_name(automata, "camera-capture-begin");
	g_timeout_add((guint)(shutter_s * 1000), capture_shot, c);
}

/* --- EntangleCameraManager: a camera window -------------------------------- */

G_DECLARE_FINAL_TYPE(EntangleCameraManager, entangle_camera_manager, ENTANGLE, CAMERA_MANAGER,
		     GtkApplicationWindow)

struct _EntangleCameraManager {
	GtkApplicationWindow parent;
	GtkWidget *capture;
	unsigned captures;
};

G_DEFINE_TYPE(EntangleCameraManager, entangle_camera_manager, GTK_TYPE_APPLICATION_WINDOW)

static void entangle_camera_manager_class_init(EntangleCameraManagerClass *klass G_GNUC_UNUSED)
{
}

static void on_capture(GSimpleAction *a G_GNUC_UNUSED, GVariant *v G_GNUC_UNUSED, gpointer p)
{
	ENTANGLE_CAMERA_MANAGER(p)->captures++;
}

/* Entangle's title bar (entangle-camera-manager.ui, "titlebarBox"): a
 * header bar with Capture, Preview and menu buttons. */
static void entangle_camera_manager_init(EntangleCameraManager *m)
{
	GtkWidget *bar = gtk_header_bar_new();
	GSimpleAction *capture = g_simple_action_new("capture", NULL);

	g_signal_connect(capture, "activate", G_CALLBACK(on_capture), m);
	g_action_map_add_action(G_ACTION_MAP(m), G_ACTION(capture));
	g_object_unref(capture);
	m->capture = gtk_button_new_with_label("Capture");
	gtk_actionable_set_action_name(GTK_ACTIONABLE(m->capture), "win.capture");
	gtk_header_bar_pack_start(GTK_HEADER_BAR(bar), m->capture);
	gtk_header_bar_pack_start(GTK_HEADER_BAR(bar), gtk_toggle_button_new_with_label("Preview"));
	gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(bar), TRUE);
	gtk_header_bar_set_title(GTK_HEADER_BAR(bar), "Entangle");
	gtk_window_set_titlebar(GTK_WINDOW(m), bar);
	gtk_window_set_default_size(GTK_WINDOW(m), 1000, 600);
}

GtkWidget *host_window_new(GtkApplication *app)
{
	GtkWidget *w = g_object_new(entangle_camera_manager_get_type(), "application", app, NULL);

	gtk_widget_show_all(w);
	return w;
}

GtkWidget *host_window_capture_button(GtkWidget *window)
{
	return ENTANGLE_CAMERA_MANAGER(window)->capture;
}

unsigned host_window_captures(GtkWidget *window)
{
	return ENTANGLE_CAMERA_MANAGER(window)->captures;
}

/* --- EntangleApplication --------------------------------------------------- */

G_DECLARE_FINAL_TYPE(EntangleApplication, entangle_application, ENTANGLE, APPLICATION,
		     GtkApplication)

struct _EntangleApplication {
	GtkApplication parent;
	PeasExtensionSet *plugins;
};

G_DEFINE_TYPE(EntangleApplication, entangle_application, GTK_TYPE_APPLICATION)

/* Entangle reads these from GSettings (org.entangle-photo.manager.interface
 * plugins) in its instance init. */
static const char *const *enabled_plugins;

static void on_extension_added(PeasExtensionSet *set G_GNUC_UNUSED,
			       PeasPluginInfo *info G_GNUC_UNUSED, PeasExtension *ext,
			       gpointer p G_GNUC_UNUSED)
{
	peas_activatable_activate(PEAS_ACTIVATABLE(ext));
}

static void on_extension_removed(PeasExtensionSet *set G_GNUC_UNUSED,
				 PeasPluginInfo *info G_GNUC_UNUSED, PeasExtension *ext,
				 gpointer p G_GNUC_UNUSED)
{
	peas_activatable_deactivate(PEAS_ACTIVATABLE(ext));
}

static void entangle_application_init(EntangleApplication *app)
{
	PeasEngine *engine = peas_engine_get_default();
	char *userdir = g_build_filename(g_get_user_config_dir(), "entangle", "plugins", NULL);

	/* Entangle's camera list, made before the plugins load, registers
	 * EntangleCamera (a parameter of its "camera-added"). */
	g_type_ensure(entangle_camera_get_type());
	g_mkdir_with_parents(userdir, 0777);
	peas_engine_enable_loader(engine, "python3");
	peas_engine_add_search_path(engine, userdir, userdir);
	g_free(userdir);
	peas_engine_rescan_plugins(engine);
	app->plugins = peas_extension_set_new(engine, PEAS_TYPE_ACTIVATABLE, "object", app, NULL);
	peas_extension_set_foreach(app->plugins, (PeasExtensionSetForeachFunc)on_extension_added,
				   NULL);
	g_signal_connect(app->plugins, "extension-added", G_CALLBACK(on_extension_added), NULL);
	g_signal_connect(app->plugins, "extension-removed", G_CALLBACK(on_extension_removed), NULL);
	for (size_t i = 0; enabled_plugins && enabled_plugins[i]; i++) {
		PeasPluginInfo *info = peas_engine_get_plugin_info(engine, enabled_plugins[i]);

		if (info)
			peas_engine_load_plugin(engine, info);
	}
}

static void application_startup(GApplication *app)
{
	static const char *const capture[] = { "s", "space", NULL };

	G_APPLICATION_CLASS(entangle_application_parent_class)->startup(app);
	gtk_application_set_accels_for_action(GTK_APPLICATION(app), "win.capture", capture);
}

static void application_dispose(GObject *o)
{
	g_clear_object(&ENTANGLE_APPLICATION(o)->plugins);
	G_OBJECT_CLASS(entangle_application_parent_class)->dispose(o);
}

static void entangle_application_class_init(EntangleApplicationClass *klass)
{
	G_APPLICATION_CLASS(klass)->startup = application_startup;
	G_OBJECT_CLASS(klass)->dispose = application_dispose;
}

GtkApplication *host_app_new(const char *const *plugins)
{
	enabled_plugins = plugins;
	return g_object_new(entangle_application_get_type(),
			    "application-id", "org.entangle_photo.Manager",
			    "flags", G_APPLICATION_NON_UNIQUE, NULL);
}

gboolean host_app_start(GtkApplication *app, GError **error)
{
	return g_application_register(G_APPLICATION(app), NULL, error);
}

gboolean host_plugin_set(const char *module, gboolean on)
{
	PeasEngine *engine = peas_engine_get_default();
	PeasPluginInfo *info = peas_engine_get_plugin_info(engine, module);

	if (!info)
		return FALSE;
	return on ? peas_engine_load_plugin(engine, info) : peas_engine_unload_plugin(engine, info);
}
