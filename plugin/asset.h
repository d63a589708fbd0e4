/*
 * Assets: the files a member's clients name by a path on their own machine
 * (a sound file for /b_allocRead, a synthdef file for /d_load), shared with
 * the session by content.
 *
 * Design notes
 * ------------
 * - A sound file travels in the session's order itself: the member that
 *   names it reads it, and sends it as /tutti/asset events of at most
 *   TUTTI_ASSET_CHUNK bytes, then the command with its path replaced by a
 *   token naming the content: "tutti-asset:<hash>.<ext>". Every server
 *   receives the chunks before the command (same origin, earlier in the
 *   order), writes them to its asset cache, and runs the command with the
 *   token replaced by the cached file's path. So nothing that needs the file
 *   plays before the file is there, on any server, and the journal holds the
 *   token, the same everywhere.
 * - The cache is content-addressed: a server that has the file already
 *   (played before, or the sender itself) keeps its copy and skips the
 *   chunks. The hash is FNV-1a 64 over the bytes, with the length in the
 *   check; it names content between members who trust each other, and is not
 *   a defence against a member forging a collision.
 * - Only the token form is accepted from the network: a member can never make
 *   another's server read, or write, a path of its choosing.
 * - The cache folder is $TUTTI_CACHE, else $XDG_CACHE_HOME/tutti/assets,
 *   else ~/.cache/tutti/assets. Chunks go to "<hash>.<ext>.part", which is
 *   renamed once the whole content is there and checked.
 * - Bounded: a chunk that does not start a file (offset > 0) is stored
 *   only into a partial file its stream began, so chunks of a file whose
 *   start was refused go nowhere; a member's partial files go when it
 *   leaves, and at each join every partial file older than an hour goes.
 *   The quotas themselves (how much one part may share, how many of its
 *   files may be partial at once) are the session's (session.c), decided
 *   from the event stream alone so that every server decides the same.
 * - The cache is private to the user the server runs as: the folders it
 *   makes are 0700 and the cache folder itself is made 0700 whenever it is
 *   used, the files 0600 (what other members played is nobody else's
 *   business on this machine).
 * - What a client may share is confined: a file is read for the session
 *   only when its real path (symbolic links resolved) is inside a folder
 *   the user allows: $TUTTI_SHARE_DIRS (folders separated by ':'), else
 *   $HOME, /usr/share, /usr/local/share and the temporary folder ($TMPDIR,
 *   else /tmp). Anything else (/etc/shadow, ~/.ssh through a link in /tmp)
 *   is refused with a /fail naming the rule: a local client of the proxy
 *   port could otherwise publish any file the server can read to every
 *   member's cache. Files under a folder named ".ssh", ".gnupg" or
 *   ".config" are refused even inside an allowed folder.
 *
 * Thread rules: pure functions and file I/O; call from one thread at a time
 * per token (the session's file worker writes and reads the cache, the
 * proxy's thread reads the client's files). Not real-time safe.
 */
#ifndef TUTTI_PLUGIN_ASSET_H
#define TUTTI_PLUGIN_ASSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_ASSET_CHUNK (48 * 1024)
#define TUTTI_ASSET_MAX ((size_t)256 << 20)
#define TUTTI_ASSET_PREFIX "tutti-asset:"
#define TUTTI_ASSET_TOKEN_MAX 48

/* Reads a whole file (at most TUTTI_ASSET_MAX bytes) into *data (malloc'd;
 * the caller frees). 0, or -errno (-EFBIG when too large). */
int tutti__asset_read(const char *path, uint8_t **data, size_t *len);

/* Partial files of a stream (an origin member) in the cache: how many
 * there are, and removing them (the member left, or its uploads are
 * refused). stream 0: every partial file older than `older_s` seconds, of
 * any stream (what a crash or an abandoned upload left behind). Removing
 * returns how many went. */
int tutti__asset_partials(uint32_t stream);
int tutti__asset_drop_partials(uint32_t stream, double older_s);

/* Whether the file at `path` may be shared with the session (the rule in
 * the design notes): 0, or -EACCES with a sentence in `why`, or -errno when
 * the path does not resolve. */
int tutti__asset_shareable(const char *path, char *why, size_t cap);

/* FNV-1a 64 of the bytes. */
uint64_t tutti__asset_hash(const uint8_t *d, size_t n);

/* The token of content `hash` that came from `path` (its extension kept, as
 * scsynth's file reader looks at it): "tutti-asset:<16 hex>.<ext>". */
void tutti__asset_token(uint64_t hash, const char *path, char *out, size_t cap);

/* True when `s` is a well-formed token; then *hash is its hash. */
bool tutti__asset_token_parse(const char *s, uint64_t *hash);

/* The cache path of a token ("<dir>/<hash>.<ext>"), creating the folder.
 * 0, or -errno, or -EINVAL for a malformed token. */
int tutti__asset_path(const char *token, char *out, size_t cap);

/* True when the cache holds the token's complete file. */
bool tutti__asset_have(const char *token);

/* A chunk message (/tutti/asset token total offset bytes) as a journal
 * keeps it: /tutti/asset token total offset "fnv1a64:<hash> bytes:<n>",
 * into `out` (TUTTI_ASSET_DIGEST_MAX is enough). Its length, or 0 when `p`
 * is not a well-formed chunk message. */
#define TUTTI_ASSET_DIGEST_MAX (TUTTI_ASSET_TOKEN_MAX + 128)
size_t tutti__asset_digest_msg(const uint8_t *p, size_t len, uint8_t *out, size_t cap);

/* Stores one chunk (offset, bytes) of content `total` bytes long, sent in
 * order by `stream` (the sending member: several may send the same file at
 * once); when the stream's content is complete, checks the hash and moves it
 * in place. 0, 1 when the file is now complete (or already was), -errno, or
 * -EINVAL (bad token, offsets, or content that does not match its hash). */
int tutti__asset_put(const char *token, uint32_t stream, uint64_t total, uint64_t offset,
                     const uint8_t *chunk, size_t n);

#ifdef __cplusplus
}
#endif
#endif
