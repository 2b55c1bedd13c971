/* pjproject build limits for the appliance.
 *
 * The upstream defaults suit a phone (4 calls, 8 accounts). A PBX bridges
 * two legs per call, and keeps legs ringing besides: 100 bridged calls are
 * 200 legs plus the ringing ones, so 512 calls leaves room for hunt groups
 * that ring many phones at once.
 */
#define PJSUA_MAX_CALLS            512
#define PJSUA_MAX_ACC              64
#define PJSUA_MAX_PLAYERS          256
#define PJSUA_MAX_RECORDERS        256
#define PJSUA_MAX_CONF_PORTS       (PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS + PJSUA_MAX_RECORDERS + 16)

/* Every call leg holds an RTP and an RTCP socket; SIP transports add more. */
#define PJ_IOQUEUE_MAX_HANDLES     4096
#define PJ_IOQUEUE_HAS_SAFE_UNREG  1
/* One thread polls each ioqueue (the engine's), so plain level-triggered
 * epoll is enough.  The default (EPOLLEXCLUSIVE|EPOLLONESHOT, for several
 * polling threads) re-arms a socket after every packet with EPOLL_CTL_DEL
 * and EPOLL_CTL_ADD: two system calls per RTP packet. */
#define PJ_IOQUEUE_DEFAULT_EPOLL_FLAGS 0

/* Many transactions in flight while groups ring. */
#define PJSIP_MAX_TSX_COUNT        (64 * 1024 - 1)
#define PJSIP_MAX_DIALOG_COUNT     (64 * 1024 - 1)

/* A desk phone that transfers a call while its second call still rings sends REFER with a
 * Replaces naming that early dialog; the engine's probe INVITE then replaces a dialog the
 * engine answers (UAS).  RFC 3891 section 3 has that refused with 481; the engine accepts
 * it (semi-attended transfer, appliance/engine/transfer.py). */
#define PJSIP_ACCEPT_REPLACE_IN_EARLY_STATE 1

/* No video on the appliance. */
#define PJMEDIA_HAS_VIDEO          0

/* Audio-only media: the conference bridge runs at 8 kHz for G.711. */
#define PJMEDIA_HAS_SRTP           1
