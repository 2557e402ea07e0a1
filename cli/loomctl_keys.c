/* loomctl_keys.c - `loomctl keys gen`: key pairs for CURVE and sealing. */
#include "loomctl.h"
#include "loom_keys.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_keys(ctl_t *ctl, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "gen") != 0) {
		fprintf(stderr, "loomctl keys: expected 'gen NAME' (see loomctl keys --help)\n");
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
	if (ctl->json)
		printf("{\"name\":\"%s\",\"public_key\":\"%s\",\"key_file\":\"%s/%s.key\",\"pub_file\":\"%s/%s.pub\"}\n",
		    name, z85, dir, name, dir, name);
	else
		printf("wrote %s/%s.key (secret, mode 0600) and %s/%s.pub\npublic key %s\n", dir, name, dir, name, z85);
	return 0;
}
