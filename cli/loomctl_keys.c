/* loomctl_keys.c - `loomctl keys gen`: key pairs for CURVE and sealing. */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_keys.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_keys(ctl_t *ctl, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "gen") != 0)
		return ctl_keyset(ctl, argc, argv);
	if (argc < 2) {
		fprintf(stderr, "loomctl keys: expected gen, create, export, import, list or rotate (see loomctl keys --help)\n");
		return 2;
	}
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	bool force = false;
	int c;
	argc--;
	argv++;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'f': force = true; break;
		default: return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "loomctl keys gen: expected one NAME\n");
		return 2;
	}
	const char *name = argv[optind];
	if (dir == NULL) {
		if (ctl_load_config(ctl) < 0) {
			fprintf(stderr, "loomctl keys gen: give --dir or fix the configuration\n");
			return 1;
		}
		dir = ctl->cfg.bus.keys_dir;
	}
	loom_keypair_t kp;
	loom_keypair_generate(&kp);
	char *err = NULL;
	int rc = loom_keys_write(dir, name, &kp, force, &err);
	char z85[LOOM_Z85_KEY_LEN + 1];
	loom_keys_z85(kp.pub, z85);
	loom_keypair_wipe(&kp);
	if (rc < 0) {
		fprintf(stderr, "loomctl keys gen: %s\n", err);
		free(err);
		return 1;
	}
	if (ctl->json) {
		loom_buf_t b = LOOM_BUF_INIT;
		char *kf = loom_sprintf("%s/%s.key", dir, name), *pf = loom_sprintf("%s/%s.pub", dir, name);
		loom_buf_adds(&b, "{\"name\":");
		loom_buf_add_json_str(&b, name, strlen(name));
		loom_buf_printf(&b, ",\"public_key\":\"%s\",\"key_file\":", z85);
		loom_buf_add_json_str(&b, kf, strlen(kf));
		loom_buf_adds(&b, ",\"pub_file\":");
		loom_buf_add_json_str(&b, pf, strlen(pf));
		loom_buf_adds(&b, "}\n");
		fputs(b.data, stdout);
		loom_buf_release(&b);
		free(kf);
		free(pf);
	} else
		printf("wrote %s/%s.key (secret, mode 0600) and %s/%s.pub\npublic key %s\n", dir, name, dir, name, z85);
	return 0;
}
