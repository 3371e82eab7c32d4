/*
 * notify: the systemd notification protocol (READY=1, STATUS=, WATCHDOG=1,
 * STOPPING=1) spoken directly over $NOTIFY_SOCKET; a no-op when wharf was
 * not started by systemd.
 */
#ifndef WHARF_NOTIFY_H
#define WHARF_NOTIFY_H

#include <stdint.h>

void notify_send(const char *msg);
/* Watchdog interval in ms ($WATCHDOG_USEC), 0 when not requested. */
int64_t notify_watchdog_ms(void);

#endif
