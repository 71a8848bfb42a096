#include "pipeline/source.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"

struct ri__source {
  ri_source_kind kind;
  FILE *f;      /* list sources */
  int own_file; /* fclose on close */
  char **names; /* glob / directory: full paths */
  size_t n, next;
  glob_t g;
  int have_glob;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ri_status open_dir(ri__source *s, const char *dir, ri__err *err) {
  DIR *d = opendir(dir);
  if (!d) return ri__err_set(err, RI_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
  size_t cap = 0;
  struct dirent *de;
  ri_status st = RI_OK;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    size_t l = strlen(dir) + strlen(de->d_name) + 2;
    char *full = ri__malloc(l);
    if (!full) {
      st = RI__OOM(err);
      break;
    }
    snprintf(full, l, "%s/%s", dir, de->d_name);
    struct stat sb;
    if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode)) {
      ri__free(full);
      continue;
    }
    if (s->n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      char **p = ri__realloc(s->names, nc * sizeof(char *));
      if (!p) {
        ri__free(full);
        st = RI__OOM(err);
        break;
      }
      s->names = p;
      cap = nc;
    }
    s->names[s->n++] = full;
  }
  closedir(d);
  if (st == RI_OK && s->n) qsort(s->names, s->n, sizeof(char *), cmp_str);
  return st;
}

ri_status ri__source_open(ri_source_kind kind, const char *spec, ri__source **out, ri__err *err) {
  *out = NULL;
  ri__source *s = ri__calloc(1, sizeof *s);
  if (!s) return RI__OOM(err);
  s->kind = kind;
  ri_status st = RI_OK;
  switch (kind) {
  case RI_SOURCE_FILE_LIST:
    s->f = fopen(spec, "rb");
    s->own_file = 1;
    if (!s->f) st = ri__err_set(err, RI_ERR_IO, "cannot open input list '%s': %s", spec, strerror(errno));
    break;
  case RI_SOURCE_STDIN: s->f = stdin; break;
  case RI_SOURCE_GLOB: {
    /* GLOB_MARK ends the names of directories with '/': those are dropped, as the directory source drops
     * everything that is not a regular file. */
    int rc = glob(spec, GLOB_ERR | GLOB_MARK, NULL, &s->g);
    if (rc == 0) {
      s->have_glob = 1;
      /* names points into gl_pathv's strings (owned by the glob_t) */
      s->names = ri__malloc((s->g.gl_pathc ? s->g.gl_pathc : 1) * sizeof(char *));
      if (!s->names) {
        st = RI__OOM(err);
        break;
      }
      for (size_t i = 0; i < s->g.gl_pathc; i++) {
        size_t l = strlen(s->g.gl_pathv[i]);
        if (l == 0 || s->g.gl_pathv[i][l - 1] != '/') s->names[s->n++] = s->g.gl_pathv[i];
      }
    } else if (rc == GLOB_NOMATCH) {
      s->n = 0;
    } else {
      st = ri__err_set(err, RI_ERR_IO, "glob '%s' failed (%s)", spec,
                       rc == GLOB_NOSPACE ? "out of memory" : "read error");
    }
    break;
  }
  case RI_SOURCE_DIRECTORY: st = open_dir(s, spec, err); break;
  default: st = ri__err_set(err, RI_ERR_INVALID_ARG, "unknown source kind %d", (int)kind);
  }
  if (st != RI_OK) {
    ri__source_close(s);
    return st;
  }
  *out = s;
  return RI_OK;
}

int ri__source_next(ri__source *s, char **key, size_t *len, ri__err *err) {
  if (s->kind == RI_SOURCE_GLOB || s->kind == RI_SOURCE_DIRECTORY) {
    if (s->next >= s->n) return 0;
    const char *name = s->names[s->next++];
    *key = ri__strdup(name);
    if (!*key) {
      RI__OOM(err);
      return -1;
    }
    *len = strlen(name);
    return 1;
  }
  for (;;) {
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t n = getline(&line, &cap, s->f);
    if (n < 0) {
      free(line);
      if (ferror(s->f)) {
        ri__err_set(err, RI_ERR_IO, "error reading the input list: %s", strerror(errno ? errno : EIO));
        return -1;
      }
      return 0;
    }
    size_t l = (size_t)n;
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
      l--;
    /* embedded NUL bytes cannot be part of a path: such a line is taken up to the NUL */
    size_t real = strnlen(line, l);
    if (real == 0 || line[0] == '#') {
      free(line);
      continue;
    }
    *key = ri__strndup(line, real);
    free(line);
    if (!*key) {
      RI__OOM(err);
      return -1;
    }
    *len = real;
    return 1;
  }
}

long ri__source_size_hint(const ri__source *s) {
  return (s->kind == RI_SOURCE_GLOB || s->kind == RI_SOURCE_DIRECTORY) ? (long)s->n : -1;
}

void ri__source_close(ri__source *s) {
  if (!s) return;
  if (s->own_file && s->f) fclose(s->f);
  if (s->have_glob) {
    ri__free(s->names);
    globfree(&s->g);
  } else if (s->kind == RI_SOURCE_DIRECTORY) {
    for (size_t i = 0; i < s->n; i++)
      ri__free(s->names[i]);
    ri__free(s->names);
  }
  ri__free(s);
}
