/* SHA-256 against the FIPS 180-2 examples, fed whole and in odd pieces,
 * with the processor's SHA instructions and without. */
#include <string.h>

#include "harness.h"
#include "sha256.h"
#include "tap.h"

static void check(const char *msg, size_t repeat, const char *want)
{
	sha256_ctx c;
	char hex[65];
	size_t len = strlen(msg);

	sha256_init(&c);
	for (size_t i = 0; i < repeat; i++)
		sha256_update(&c, msg, len);
	sha256_final_hex(&c, hex);
	tap_is_str(hex, want, "whole");

	/* The same bytes in pieces of 1, 2, 3 ... bytes. */
	sha256_init(&c);
	size_t step = 1;
	for (size_t i = 0; i < repeat; i++)
		for (size_t off = 0; off < len; off += step, step = step % 67 + 1)
			sha256_update(&c, msg + off, off + step > len ? len - off : step);
	sha256_final_hex(&c, hex);
	tap_is_str(hex, want, "in pieces");
}

static void check_all(void)
{
	check("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check("a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* The digest of the file at path. */
static void file_digest(const char *path, char hex[65])
{
	cs_error err;

	if (sha256_file(path, hex, NULL, &err))
		tap_diag("%s", err.msg);
}

/* The processor's SHA instructions (where it has them) and the portable
 * code agree, on the test vectors and on arbitrary bytes. */
static void check_both_ways(void)
{
	char *path = harness_make_file("random.bin", 1000003, 7);
	char fast[65] = "", portable[65] = "";

	check_all();
	file_digest(path, fast);
	sha256_set_accelerated(false);
	check_all();
	file_digest(path, portable);
	sha256_set_accelerated(true);
	tap_is_str(fast, portable, "1,000,003 arbitrary bytes: the same digest both ways");
	free(path);
}

int main(void)
{
	char hex[65];
	long long size = 0;
	cs_error err;

	check_both_ways();

	char *path = harness_make_file("hash.bin", 0, 1);
	FILE *f = fopen(path, "wb");
	for (int i = 0; i < 1000000; i++)
		fputc('a', f);
	fclose(f);
	tap_ok(sha256_file(path, hex, &size, &err) == 0, "hash a file");
	tap_is_str(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		   "file digest");
	tap_is_int(size, 1000000, "file size");
	tap_is_int(sha256_file("/nonexistent/x", hex, NULL, &err), CS_E_IO, "a missing file");
	free(path);
	harness_cleanup();
	return tap_done();
}
