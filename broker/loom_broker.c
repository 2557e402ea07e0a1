/* loom_broker.c - main() of loom-broker: all the work is in broker.c. */
#include "loom_daemon.h"

extern const loom_daemon_def_t loom_broker_def;

int main(int argc, char **argv)
{
	return loom_daemon_main(&loom_broker_def, argc, argv);
}
