/* The Entangle plugin in a host that behaves as Entangle 3.0 does
 * (host.c): installed as a user installs it, loaded by libpeas, fed the
 * downloads Entangle announces, with catalog numbers set through the
 * plugin's action and, on a display (Xvfb), typed into its field in the
 * title bar; checked against what the stand-in Specify holds.
 *
 * usage: test-entangle MODULE.so PLUGIN-FILE INSTALL-SCRIPT MKJPEG */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "host.h"
#include "tap.h"

#define MODULE "copystand-entangle"
#define ACTION "copystand-catalog-number"

static harness_server hs;
static GPtrArray *notes;         /* what the plugin said, in order */
static const char *mkjpeg;
static pid_t xvfb = -1;

static void on_log(const char *domain G_GNUC_UNUSED, GLogLevelFlags level G_GNUC_UNUSED,
		   const char *text, gpointer p G_GNUC_UNUSED)
{
	tap_diag("plugin: %s", text);
	g_ptr_array_add(notes, g_strdup(text));
}

/* Runs the main loop for up to timeout_s, until a note from index `from`
 * on holds what (then returns its index), or -1. */
static int wait_note(guint from, const char *what, double timeout_s)
{
	double until = harness_now() + timeout_s;

	for (;;) {
		for (guint i = from; i < notes->len; i++)
			if (strstr(notes->pdata[i], what))
				return (int)i;
		if (harness_now() > until)
			return -1;
		g_main_context_iteration(NULL, TRUE);
	}
}

static void spin(double seconds)
{
	double until = harness_now() + seconds;

	while (harness_now() < until)
		g_main_context_iteration(NULL, TRUE);
}

static int attached_to(const char *name, long long record)
{
	int n = 0;

	cJSON_Delete(harness_attachment_of(&hs, name, record, &n));
	return n;
}

/* Waits (main loop running) until name is attached to record. */
static bool wait_attached(const char *name, long long record)
{
	double until = harness_now() + 60;

	while (harness_now() < until) {
		if (attached_to(name, record) == 1)
			return true;
		spin(0.2);
	}
	return false;
}

/* A real JPEG from mkjpeg (seed makes it differ), or random bytes for a
 * RAW, as Entangle holds a download: in memory. */
static GByteArray *image(const char *name, unsigned seed)
{
	char *path = g_build_filename(harness_home(), name, NULL), *cmd, *bytes = NULL;
	gsize len = 0;
	GByteArray *a = NULL;

	if (g_str_has_suffix(name, ".JPG")) {
		cmd = g_strdup_printf("%s 320 240 %u %s", mkjpeg, seed, path);
		if (system(cmd) != 0)
			tap_diag("%s failed", cmd);
		g_free(cmd);
	} else {
		char *made = harness_make_file(name, 60000, seed);
		g_free(path);
		path = g_strdup(made);
		free(made);
	}
	if (g_file_get_contents(path, &bytes, &len, NULL))
		a = g_byte_array_new_take((guint8 *)bytes, len);
	unlink(path);
	g_free(path);
	return a ? a : g_byte_array_new();
}

static void download(GObject *camera, const char *name, unsigned seed)
{
	GByteArray *data = image(name, seed);

	host_camera_download(camera, name, data);
	g_byte_array_unref(data);
}

/* The plugin's action, as the field or `gapplication action` activates
 * it (straight from the action map: a headless host is not registered). */
static GAction *number_action(GtkApplication *app)
{
	return g_action_map_lookup_action(G_ACTION_MAP(app), ACTION);
}

static void set_number(GtkApplication *app, const char *text)
{
	g_action_activate(number_action(app), g_variant_new_string(text));
}

/* What copystand_open(NULL) reads: the user's config file. */
static bool write_config(void)
{
	char *dir = g_build_filename(g_get_user_config_dir(), "copystand", NULL);
	char *path = g_build_filename(dir, "config", NULL);
	char *text = g_strdup_printf("server = %s\nuser = %s\ncollection = %s\n"
				     "dir = %s/session\n", hs.url, hs.user, hs.collection,
				     harness_home());
	bool ok = g_mkdir_with_parents(dir, 0700) == 0 &&
		  g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL);

	g_free(dir);
	g_free(path);
	g_free(text);
	return ok;
}

/* Installs the plugin as docs/plugins.md tells a user to (the script
 * behind `meson compile install-entangle-plugin`), into the test's HOME. */
static void test_install(const char *module, const char *info, const char *script)
{
	char *cmd = g_strdup_printf("sh '%s' '%s' '%s' >&2", script, module, info);
	char *dir = g_build_filename(g_get_user_config_dir(), "entangle", "plugins", "copystand",
				     NULL);

	tap_is_int(system(cmd), 0, "install-user.sh installs the plugin");
	tap_ok(harness_dir_is(dir, "copystand.plugin libcopystand-entangle.so"),
	       "into ~/.config/entangle/plugins/copystand, where Entangle looks");
	g_free(cmd);
	g_free(dir);
}

static void die_with_us(gpointer p G_GNUC_UNUSED)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* A display for the title-bar field: Xvfb on a free display number, dying
 * with us.  FALSE (said why) when there is none. */
static bool start_display(void)
{
	const char *const argv[] = { "Xvfb", "-displayfd", "3", "-nolisten", "tcp",
				     "-screen", "0", "1280x800x24", NULL };
	const int target = 3;
	char num[16] = "", *display;
	GError *e = NULL;
	FILE *f;
	int fds[2];
	bool ok;

	if (pipe(fds) != 0)
		return false;
	ok = g_spawn_async_with_pipes_and_fds(NULL, argv, NULL,
					      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
					      die_with_us, NULL, -1, -1, -1, &fds[1], &target, 1,
					      &xvfb, NULL, NULL, NULL, &e);
	close(fds[1]);
	/* One line: Xvfb writes the number and the newline apart, and dies
	 * if the pipe is closed in between. */
	f = ok ? fdopen(fds[0], "r") : NULL;
	ok = f && fgets(num, sizeof num, f) && strchr(num, '\n');
	if (f)
		fclose(f);
	else
		close(fds[0]);
	if (!ok) {
		tap_diag("no display: %s", e ? e->message : "Xvfb did not start");
		g_clear_error(&e);
		return false;
	}
	num[strcspn(num, "\n")] = '\0';
	display = g_strdup_printf(":%s", num);
	setenv("DISPLAY", display, 1);
	g_free(display);
	return gtk_init_check(NULL, NULL);
}

static void stop_display(void)
{
	if (xvfb > 0) {
		kill(xvfb, SIGTERM);
		waitpid(xvfb, NULL, 0);
	}
}

static GtkWidget *field_of(GtkWidget *window)
{
	GtkWidget *bar = gtk_window_get_titlebar(GTK_WINDOW(window)), *entry = NULL;
	GList *children = gtk_container_get_children(GTK_CONTAINER(bar));

	for (GList *l = children; l && !entry; l = l->next) {
		if (!GTK_IS_BOX(l->data))
			continue;
		GList *inner = gtk_container_get_children(GTK_CONTAINER(l->data));
		for (GList *k = inner; k && !entry; k = k->next)
			if (GTK_IS_ENTRY(k->data))
				entry = k->data;
		g_list_free(inner);
	}
	g_list_free(children);
	return entry;
}

/* A key as the X server would deliver it to Entangle's window. */
static void press(GtkWidget *window, guint keyval)
{
	GdkDisplay *d = gtk_widget_get_display(window);
	GdkEvent *ev = gdk_event_new(GDK_KEY_PRESS);
	GdkKeymapKey *keys = NULL;
	gint n = 0;

	ev->key.window = g_object_ref(gtk_widget_get_window(window));
	ev->key.send_event = TRUE;
	ev->key.time = GDK_CURRENT_TIME;
	ev->key.keyval = keyval;
	if (gdk_keymap_get_entries_for_keyval(gdk_keymap_get_for_display(d), keyval, &keys, &n)) {
		ev->key.hardware_keycode = (guint16)keys[0].keycode;
		ev->key.group = (guint8)keys[0].group;
		g_free(keys);
	}
	gdk_event_set_device(ev, gdk_seat_get_keyboard(gdk_display_get_default_seat(d)));
	gtk_main_do_event(ev);
	ev->type = GDK_KEY_RELEASE;
	gtk_main_do_event(ev);
	gdk_event_free(ev);
	spin(0.05);
}

static void type(GtkWidget *window, const char *text)
{
	for (const char *c = text; *c; c++)
		press(window, gdk_unicode_to_keyval((guint32)(unsigned char)*c));
}

/* The technician at the window: scans into the field, Entangle's own keys
 * still work elsewhere, the field takes the focus back after each shot. */
static void test_window(GtkWidget *window, GObject *camera)
{
	GtkWidget *entry = field_of(window);
	guint mark;

	if (!tap_ok(entry != NULL, "the field is in the camera window's title bar"))
		return;
	tap_ok(gtk_window_get_focus(GTK_WINDOW(window)) == entry,
	       "and has the focus, ready for the first scan");

	mark = notes->len;
	type(window, "7");
	press(window, GDK_KEY_Return);
	tap_is_str(gtk_entry_get_text(GTK_ENTRY(entry)), "7", "a scan types into the field");
	tap_ok(wait_note(mark, "000000007", 20) >= 0, "Enter sets it: Specify's answer is shown");

	unsigned captures = host_window_captures(window);
	press(window, GDK_KEY_space);
	tap_ok(host_window_captures(window) == captures + 1 &&
	       !strcmp(gtk_entry_get_text(GTK_ENTRY(entry)), "7"),
	       "once the number is in, Space shoots as Entangle's shortcut");
	press(window, GDK_KEY_s);
	type(window, "a b");
	tap_ok(host_window_captures(window) == captures + 1 &&
	       !strcmp(gtk_entry_get_text(GTK_ENTRY(entry)), "sa b"),
	       "while typing, Entangle's shortcut keys s and Space are text");
	gtk_entry_set_text(GTK_ENTRY(entry), "7");
	gtk_widget_grab_focus(host_window_capture_button(window));
	press(window, GDK_KEY_s);
	tap_is_int(host_window_captures(window), captures + 2,
		   "elsewhere in the window, s still captures");

	mark = notes->len;
	download(camera, "IMG_0004.JPG", 4);
	tap_ok(wait_note(mark, "IMG_0004.JPG → 000000007.jpg", 20) >= 0,
	       "the next shot is named from the typed number");
	tap_ok(gtk_window_get_focus(GTK_WINDOW(window)) == entry,
	       "after the shot the field has the focus again, for the next scan");
	tap_ok(wait_attached("000000007.jpg", 7), "and Specify holds it on record 7");
}

static gboolean tick(gpointer p G_GNUC_UNUSED)
{
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	static const char *const plugins[] = { MODULE, NULL };
	GtkApplication *app = NULL;
	GtkWidget *window = NULL;
	GObject *camera = NULL;
	GError *e = NULL;
	guint log_handler, ticker, mark;
	bool gui;

	if (argc < 5)
		return tap_skip_all("usage: test-entangle MODULE.so PLUGIN-FILE INSTALL-SCRIPT MKJPEG");
	mkjpeg = argv[4];
	const char *why = harness_standin_start(&hs);
	if (why)
		return tap_skip_all(why);
	setenv("COPYSTAND_PASSWORD", hs.password, 1);
	notes = g_ptr_array_new_with_free_func(g_free);
	log_handler = g_log_set_handler("copystand", G_LOG_LEVEL_MASK, on_log, NULL);
	ticker = g_timeout_add(50, tick, NULL);   /* the waits below wake this often */
	if (!tap_ok(write_config(), "a copystand config file in the test's HOME"))
		goto out;
	test_install(argv[1], argv[2], argv[3]);
	gui = start_display();
	if (!gui)
		tap_diag("the title-bar field is not tested (scripts/deps.sh installs Xvfb)");

	/* Entangle starts: the plugin is enabled in its settings. */
	app = host_app_new(plugins);
	tap_ok(peas_plugin_info_is_loaded(peas_engine_get_plugin_info(peas_engine_get_default(),
								      MODULE)),
	       "libpeas loads the plugin from the user's Entangle plugin folder");
	tap_ok(number_action(app) != NULL,
	       "the plugin adds the action " ACTION " to Entangle's application");
	tap_ok(wait_note(0, "copystand is ready", 30) >= 0, "copystand opens its station");
	camera = host_camera_new();
	if (gui) {
		if (!tap_ok(host_app_start(app, &e), "Entangle's application registers%s%s",
			    e ? ": " : "", e ? e->message : ""))
			goto out;
		window = host_window_new(app);
	}

	/* A JPEG-only shot. */
	mark = notes->len;
	set_number(app, "5");
	tap_ok(wait_note(mark, "000000005", 20) >= 0, "scan 5: Specify's answer is shown");
	download(camera, "IMG_0001.JPG", 1);
	tap_ok(wait_note(mark, "IMG_0001.JPG → 000000005.jpg", 20) >= 0,
	       "a downloaded JPEG is named from the current number");
	tap_ok(wait_attached("000000005.jpg", 5), "Specify holds it on record 5");
	tap_ok(wait_note(mark, "attached ✓ 000000005", 60) >= 0, "and the plugin says so");

	/* A RAW+JPEG press, the next label scanned between its two downloads:
	 * both files are one press, named from the number they were shot at. */
	mark = notes->len;
	download(camera, "IMG_0002.JPG", 2);
	spin(0.3);   /* Entangle announces it from an idle callback */
	set_number(app, "6");
	download(camera, "IMG_0002.CR2", 3);
	tap_ok(wait_note(mark, "IMG_0002.JPG + IMG_0002.CR2 → 000000005_2.jpg", 20) >= 0,
	       "the pair goes to copystand as one press, named from 5");
	download(camera, "IMG_0003.JPG", 5);
	tap_ok(wait_note(mark, "IMG_0003.JPG → 000000006.jpg", 20) >= 0,
	       "the shot after the scan is named from 6");
	tap_ok(wait_attached("000000005_2.jpg", 5) && wait_attached("000000005_2.cr2", 5),
	       "Specify holds the pair on record 5");
	tap_ok(wait_attached("000000006.jpg", 6), "and the next shot on record 6");

	mark = notes->len;
	set_number(app, "no such thing!");
	tap_ok(wait_note(mark, "no such thing!:", 20) >= 0,
	       "text that is no catalog number is refused, and said so");

	if (gui)
		test_window(window, camera);
	else
		tap_ok(1, "the title-bar field # SKIP no display");

	/* Disabled in Preferences → Plugins, then enabled again. */
	tap_ok(host_plugin_set(MODULE, FALSE), "the plugin is disabled");
	mark = notes->len;
	tap_ok(number_action(app) == NULL, "its action is gone");
	if (gui)
		tap_ok(field_of(window) == NULL, "and its field");
	download(camera, "IMG_0005.JPG", 6);
	tap_ok(wait_note(mark, "IMG_0005.JPG", 4) < 0, "a disabled plugin takes no captures");
	tap_ok(host_plugin_set(MODULE, TRUE), "enabled again");
	tap_ok(wait_note(mark, "copystand is ready", 30) >= 0, "it opens its station again");
	if (gui)
		tap_ok(field_of(window) != NULL, "its field is back in the open window");
	tap_ok(host_plugin_set(MODULE, FALSE), "disabled before Entangle quits");
out:
	if (window)
		gtk_widget_destroy(window);
	g_clear_object(&camera);
	g_clear_object(&app);
	g_clear_error(&e);
	spin(0.1);   /* the plugin's last notes */
	g_log_remove_handler("copystand", log_handler);
	g_source_remove(ticker);
	g_ptr_array_unref(notes);
	stop_display();
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
