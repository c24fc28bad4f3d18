/* A stand-in for Entangle 3.0 as its plugins see it: the GObject types the
 * copystand plugin reaches by name (EntangleApplication,
 * EntangleCameraManager, EntangleCamera, EntangleCameraAutomata,
 * EntangleCameraFile) with the names, properties and signals it uses as
 * Entangle 3.0 has them, and Entangle's libpeas set-up. */
#ifndef COPYSTAND_TEST_ENTANGLE_HOST_H
#define COPYSTAND_TEST_ENTANGLE_HOST_H

#include <gtk/gtk.h>
#include <libpeas/peas.h>

/* The application, its plugin engine set up as Entangle's is (the user's
 * ~/.config/entangle/plugins, then loading the plugins the settings name:
 * here plugins, NULL-terminated), all in its instance init.  Not
 * registered: a display is needed for that (host_app_start). */
GtkApplication *host_app_new(const char *const *plugins);

/* Registers the application (its startup sets Entangle's single-key
 * shortcuts), as Entangle does before it opens windows.  FALSE with a
 * message on failure. */
gboolean host_app_start(GtkApplication *app, GError **error);

/* Enables or disables a plugin, as Preferences → Plugins does. */
gboolean host_plugin_set(const char *module, gboolean on);

/* A camera as Entangle makes one when it detects it. */
GObject *host_camera_new(void);

/* As Entangle does once it has a file off the camera: emits the camera's
 * "camera-file-downloaded" from an idle callback on the main loop, with an
 * EntangleCameraFile holding the bytes. */
void host_camera_download(GObject *camera, const char *name, GByteArray *data);

/* The automaton that runs a camera window's captures. */
GObject *host_automata_new(GObject *camera);

/* A capture as Entangle runs one (Capture, Space): "camera-capture-begin"
 * now; after shutter_s the camera has shot: "camera-file-captured" (from
 * an idle callback) and "camera-capture-end" (at default priority, so
 * usually before it); then after transfer_s "camera-file-downloaded" with
 * data.  name NULL (data too): the camera fails, and only the end comes. */
void host_capture(GObject *automata, const char *name, GByteArray *data, double shutter_s,
		  double transfer_s);

/* A camera window: a title bar with Entangle's buttons, and the action
 * win.capture (keys s and space) that counts. */
GtkWidget *host_window_new(GtkApplication *app);
GtkWidget *host_window_capture_button(GtkWidget *window);
unsigned host_window_captures(GtkWidget *window);

#endif
