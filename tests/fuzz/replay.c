/* Runs a fuzz target over every file of its corpus directories, as a TAP
 * test, so the corpora are replayed under ASan/UBSan by an ordinary build.
 * (With -Dfuzzing=true libFuzzer's own main does this instead.) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tap.h"

#define REPLAY_MAX_BYTES (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = malloc(REPLAY_MAX_BYTES);
	size_t n = 0;

	if (fp && buf) {
		n = fread(buf, 1, REPLAY_MAX_BYTES, fp);
		/* An exact-size copy, so that ASan sees reads past the end. */
		uint8_t *input = malloc(n ? n : 1);
		memcpy(input, buf, n);
		LLVMFuzzerTestOneInput(input, n);
		free(input);
	}
	tap_ok(fp && buf, "%s (%zu bytes)", path, n);
	if (fp)
		fclose(fp);
	free(buf);
}

static void replay_dir(const char *dir)
{
	struct dirent **entries;
	int n = scandir(dir, &entries, NULL, alphasort);

	if (n < 0) {
		tap_ok(0, "cannot read corpus %s", dir);
		return;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			replay_file(path);
		free(entries[i]);
	}
	free(entries);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return tap_skip_all("usage: replay CORPUS_DIR...");
	for (int i = 1; i < argc; i++)
		replay_dir(argv[i]);
	if (tap_count == 0)
		tap_ok(0, "the corpus is empty");
	return tap_done();
}
