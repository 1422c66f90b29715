/* Loads channel plugins (<vocd/plugin.h>) and implements the core calls they get.
 *
 * Start-up: every `plugins:` entry is dlopen'ed from plugin_dir, its ABI version checked,
 * its config section validated against its option table, then init() and start(). Any
 * failure stops start-up with a message naming the plugin — unless the entry says
 * `optional: true`, then it is a warning and the plugin is skipped.
 * Shutdown: stop() when draining begins (no new input), destroy() once the writer has
 * answered every submission the plugin made. */
#ifndef VOC_PLUGIN_HOST_H
#define VOC_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "diag.h"

struct voc_daemon;
struct voc_plugin_host;

/* Load, validate, init and start every configured plugin. Returns 0, or -1 (diag). */
int voc_plugins_start(struct voc_daemon *d, struct voc_plugin_host **out, struct voc_diag *diag);
/* `vocd --check`: load each plugin and validate its options without init. */
int voc_plugins_check(const struct voc_config *cfg, struct voc_diag *diag);
/* `vocd --options`: print each configured plugin's option table (Markdown). */
void voc_plugins_describe(const struct voc_config *cfg, FILE *out);
/* Reload: validate the new sections (diag), then, after the caller decided to swap,
 * hand each plugin its new config. Two steps so that nothing changes when anything else in
 * the new config is invalid. */
struct voc_plugin_reload;
int voc_plugins_prepare_reload(struct voc_plugin_host *host, const struct voc_config *next,
                               struct voc_plugin_reload **out, struct voc_diag *diag);
void voc_plugins_commit_reload(struct voc_plugin_host *host, struct voc_plugin_reload *r);
void voc_plugins_abort_reload(struct voc_plugin_reload *r);

/* Stop taking input (drain). */
void voc_plugins_stop(struct voc_plugin_host *host);
/* Destroy and unload; the writer must have answered every submission already. */
void voc_plugins_free(struct voc_plugin_host *host);

/* Names of the running plugins, for status. */
size_t voc_plugins_count(const struct voc_plugin_host *host);
const char *voc_plugins_name(const struct voc_plugin_host *host, size_t i);

#endif
