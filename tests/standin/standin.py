#!/usr/bin/env python3
"""Stand-in for Specify 7.12 and its Web Asset Server, for copystand's integration tests.

One process, two listening ports on 127.0.0.1 (like a deployment where the asset server is a
separate service):

    python3 standin.py [--fixture FILE] [--state-dir DIR] [--seed N] [--no-asset-server]
                       [--asset-key KEY] [--tls-cert FILE --tls-key FILE] [--verbose]
                       [--profile none|specify-7.12]

prints exactly one line, ``READY <specify_port> <asset_port>``, and exits on SIGTERM/SIGINT or when
stdin reaches EOF (so run it by hand as ``sleep infinity | python3 standin.py``).  The behaviour
follows /work/shared/specify-api.md and the recorded exchanges in /work/shared/specify-samples,
checked against specify7's and web-asset-server's source: a stand-in that accepts what real
Specify rejects is a bug.  Files live in STATE/originals/<store>.

With --tls-cert/--tls-key the Specify port (control API included) speaks HTTPS only, and Django's
HTTPS rule applies: an unsafe request without Origin needs a Referer of the same host (§1.1).  The
asset server stays plain HTTP, as do the URLs Specify announces for it.

--profile specify-7.12 (or the fault key "profile") times requests as a real deployment answers
them (PROFILES: specify-api.md, appendix D): each Specify request takes its measured median
(get_token 52 ms, the join-row POST 80 ms, a record's GET 124 ms, its PUT 150 ms, ...) with at most
two served at once; the asset server serves one request at a time, 1.2 ms each, uploads read at
150 MB/s at most.  The default, none, answers as fast as it can.

POST /bulk_copy/bulk/<table>/ takes a JSON list and creates each object as POST /api/specify/<table>/
would, each in its own transaction (Specify 7.11.2 and later); the fault key "bulk": false answers it
404, as older versions do; "bulk_fail_at": k makes the next bulk request of more than k objects
fail on its object k (a 500, as a row that breaks a database rule), the k before it created.

The fault key "meet": ["METHOD /path", ...] (a test switch, nothing Specify does) makes requests of
those kinds wait until one of each has come, "meet_s" (10) at the most, else answer 503: it tells
a client that sends them side by side from one that sends them one after the other.

The fault key "csrf_issued_only" (a test switch, beyond Django) takes only CSRF cookies the stand-in
issued and did not rotate at a login; Django, and so Specify, takes any well-formed one.  "csrf_cookie_domain":
"example.org" sets the csrftoken cookie with that Domain, as Django does with CSRF_COOKIE_DOMAIN.

Control API (Specify port; not subject to faults, not counted):
  GET  /__standin__/state           attachments (join rows + attachment fields), files {store:
                                     {size, sha256}}, requests {"METHOD /path": n}, busiest
                                     {"METHOD /path": the most served at once}, sessions
  GET  /__standin__/faults          current fault settings
  POST /__standin__/faults          JSON merged into them (keys: FAULT_DEFAULTS, plus the one-shot
                                     "expire_sessions": true); POST /__standin__/faults/reset
                                     (back to the defaults, --profile included)
  POST /__standin__/records         {"table": t, "fields": {...}} inserts a row directly → {"id": n}
  DELETE /__standin__/records/<table>/<id>   deletes like Specify would (cascades, files)
"""

import argparse
import contextlib
import datetime
import decimal
import difflib
import email.utils
import gzip
import hashlib
import hmac
import html
import http.client
import http.server
import json
import mimetypes
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import string
import sys
import tempfile
import threading
import time
import unicodedata
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

CHUNK = 1 << 20                          # streaming unit: never hold a whole file in memory
SPECIFY_BODY_MAX = 400 * 1024 * 1024     # nginx client_max_body_size on Specify routes (§6)
TOKEN_TOLERANCE = 150                    # asset server TIME_TOLERANCE, strict "<"
NEVER_CACHE = 'max-age=0, no-cache, no-store, must-revalidate, private'
API_CACHE = 'private, max-age=2'
CSRF_CHARS = string.ascii_letters + string.digits

# Django 4.2's CSRF failure page, as recorded in sample 05.
CSRF_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta http-equiv="content-type" content="text/html; charset=utf-8">
  <meta name="robots" content="NONE,NOARCHIVE">
  <title>403 Forbidden</title>
  <style type="text/css">
    html * { padding:0; margin:0; }
    body * { padding:10px 20px; }
    body * * { padding:0; }
    body { font:small sans-serif; background:#eee; color:#000; }
    body>div { border-bottom:1px solid #ddd; }
    h1 { font-weight:normal; margin-bottom:.4em; }
    h1 span { font-size:60%; color:#666; font-weight:normal; }
    #info { background:#f6f6f6; }
    #info ul { margin: 0.5em 4em; }
    #info p, #summary p { padding-top:10px; }
    #summary { background: #ffc; }
    #explanation { background:#eee; border-bottom: 0px none; }
  </style>
</head>
<body>
<div id="summary">
  <h1>Forbidden <span>(403)</span></h1>
  <p>CSRF verification failed. Request aborted.</p>{explanation}</div>

<div id="info">
  <h2>Help</h2>
    
    <p>Reason given for failure:</p>
    <pre>
    {reason}
    </pre>
    

  <p>In general, this can occur when there is a genuine Cross Site Request Forgery, or when
  <a
  href="https://docs.djangoproject.com/en/4.2/ref/csrf/">Django\u2019s
  CSRF mechanism</a> has not been used correctly.  For POST forms, you need to
  ensure:</p>

  <ul>
    <li>Your browser is accepting cookies.</li>

    <li>The view function passes a <code>request</code> to the template\u2019s <a
    href="https://docs.djangoproject.com/en/dev/topics/templates/#django.template.backends.base.Template.render"><code>render</code></a>
    method.</li>

    <li>In the template, there is a <code>{% csrf_token
    %}</code> template tag inside each POST form that
    targets an internal URL.</li>

    <li>If you are not using <code>CsrfViewMiddleware</code>, then you must use
    <code>csrf_protect</code> on any views that use the <code>csrf_token</code>
    template tag, as well as those that accept the POST data.</li>

    <li>The form has a valid CSRF token. After logging in in another browser
    tab or hitting the back button after a login, you may need to reload the
    page with the form, because the token is rotated after a login.</li>
  </ul>

  <p>You\u2019re seeing the help section of this page because you have <code>DEBUG =
  True</code> in your Django settings file. Change that to <code>False</code>,
  and only the initial error message will be displayed.  </p>

  <p>You can customize this page using the CSRF_FAILURE_VIEW setting.</p>
</div>

</body>
</html>
"""

# What the page says between summary and help, by reason (django/views/csrf.py: no_referer,
# no_cookie); every other reason leaves the blank lines of sample 05.
CSRF_EXPLANATIONS = {
    'Referer checking failed - no Referer.':
        '\n\n  <p>You are seeing this message because this HTTPS site requires a \u201cReferer header\u201d to '
        'be sent by your web browser, but none was sent. This header is required for security reasons, to '
        'ensure that your browser is not being hijacked by third parties.</p>\n  <p>If you have configured '
        'your browser to disable \u201cReferer\u201d headers, please re-enable them, at least for this site, '
        'or for HTTPS connections, or for \u201csame-origin\u201d requests.</p>\n  <p>If you are using the '
        '&lt;meta name=&quot;referrer&quot; content=&quot;no-referrer&quot;&gt; tag or including the '
        '\u201cReferrer-Policy: no-referrer\u201d header, please remove them. The CSRF protection requires '
        'the \u201cReferer\u201d header to do strict referer checking. If you\u2019re concerned about privacy, '
        'use alternatives like &lt;a rel=&quot;noreferrer&quot; \u2026&gt; for links to third-party '
        'sites.</p>\n\n\n',
    'CSRF cookie not set.':
        '\n\n\n  <p>You are seeing this message because this site requires a CSRF cookie when submitting '
        'forms. This cookie is required for security reasons, to ensure that your browser is not being '
        'hijacked by third parties.</p>\n  <p>If you have configured your browser to disable cookies, please '
        're-enable them, at least for this site, or for \u201csame-origin\u201d requests.</p>\n\n',
}


def csrf_page(reason):
    return (CSRF_PAGE.replace('{explanation}', CSRF_EXPLANATIONS.get(reason, '\n\n\n'))
            .replace('{reason}', html.escape(reason)))


# Django's built-in error pages (no templates in specify7 override them).
DJANGO_PAGE = """
<!doctype html>
<html lang="en">
<head>
  <title>%s</title>
</head>
<body>
  <h1>%s</h1><p>%s</p>
</body>
</html>
"""
DJANGO_PAGES = {404: ('Not Found', 'The requested resource was not found on this server.'),
                500: ('Server Error (500)', '')}

# Bottle's error page, as recorded in sample 26.
BOTTLE_PAGE = """
    <!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">
    <html>
        <head>
            <title>Error: %(status)s</title>
            <style type="text/css">
              html {background-color: #eee; font-family: sans;}
              body {background-color: #fff; border: 1px solid #ddd;
                    padding: 15px; margin: 15px;}
              pre {background-color: #eee; border: 1px solid #ddd; padding: 5px;}
            </style>
        </head>
        <body>
            <h1>Error: %(status)s</h1>
            <p>Sorry, the requested URL <tt>%(url)s</tt>
               caused an error:</p>
            <pre>%(body)s</pre>
        </body>
    </html>
"""

NGINX_TITLES = {503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out'}


def nginx_page(code):
    title = '%d %s' % (code, NGINX_TITLES.get(code) or http.HTTPStatus(code).phrase)
    return ('<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n'
            '<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n' % (title, title)).encode()


def http_date(t=None):
    return email.utils.formatdate(t, usegmt=True)


def now_iso():
    return datetime.datetime.now().isoformat()


def fold(v):
    """Case and accent folding of MariaDB's utf8mb4_general_ci (what LIKE compares)."""
    s = unicodedata.normalize('NFKD', str(v))
    return ''.join(c for c in s if not unicodedata.combining(c)).casefold()


def collate(v):
    """Key for "=" / IN / ORDER BY on text columns: the collation also ignores trailing spaces."""
    return fold(v).rstrip(' ')


def sql_like(value, pattern):
    """value LIKE pattern under the _ci collation: % any run, _ any one character."""
    rx = ''.join('.*' if ch == '%' else '.' if ch == '_' else re.escape(ch) for ch in fold(pattern))
    return re.fullmatch(rx, fold(value), re.S) is not None


_EXC = {}


def exc(name, *args):
    """An exception whose class name is the Django/DB one, since it ends up in the 500 body."""
    cls = _EXC.get(name) or _EXC.setdefault(name, type(name, (Exception,), {}))
    return cls(*args)


class Reply(Exception):
    """A complete HTTP answer raised from deep inside a view (400/403/404/409 ...)."""

    def __init__(self, status, body=b'', ctype='text/html; charset=utf-8', headers=()):
        super().__init__(status)
        self.status, self.body, self.ctype, self.headers = status, body, ctype, list(headers)


class TooLarge(Exception):
    pass


class BadBody(ConnectionError):
    """Malformed chunked coding: answered 400, like nginx, and the connection closed."""


class CollectionMissing(Exception):
    pass


def http404(msg):
    return Reply(404, msg)


# ------------------------------------------------------------------------------ faults and counters

FAULT_DEFAULTS = dict(latency_ms=0, error_rate=0.0, error_status=503, error_paths=None,
                      drop_after_commit_rate=0.0, session_ttl_s=None, asset_clock_skew_s=0,
                      max_upload_bytes=None, asset_down=False, conflict_next_put=0, profile='none',
                      bulk=True, bulk_fail_at=None, meet=None, meet_s=10,
                      csrf_issued_only=False, csrf_cookie_domain=None)


# ------------------------------------------------------------------------------ timing profiles

# What requests cost on a real deployment (specify-api.md, appendix D: Specify 7.12.0.7 under
# Django's own server with MariaDB, the asset server on wsgiref, one 2-core machine; medians).
# Specify: each request waits for one of `specify_slots` (its two cores), then `ms` of the first
# matching (method, path) rule, else `other_ms` (get_token's cost: it does no work of its own, so
# that is what any request pays for the dev server, the session and the permission checks), then
# is served.  The asset server serves one request at a time (wsgiref is single-threaded), each
# `asset_ms` plus, for an upload, its body read at `asset_upload_bytes_s` at most.
PROFILES = {
    'none': None,
    'specify-7.12': dict(
        specify_slots=2,
        ms=[(('POST',), re.compile(r'/attachment_gw/get_upload_params/$'), 52),
            (('GET', 'HEAD'), re.compile(r'/attachment_gw/get_token/$'), 52),
            (('POST',), re.compile(r'/api/specify/collectionobjectattachment/$'), 80),
            (('GET', 'HEAD'), re.compile(r'/api/specify/collectionobject/\d+/$'), 124),
            (('PUT',), re.compile(r'/api/specify/collectionobject/\d+/$'), 150),
            (('POST',), re.compile(r'/stored_query/ephemeral/$'), 108)],
        other_ms=52,
        # Not measured: the bulk view runs post_resource once per object (bulk_copy.py), so each
        # row is taken to cost the join-row POST's own work: its 80 ms less a request's 52 ms.
        bulk_row_ms=28,
        asset_ms=1.2,
        asset_upload_bytes_s=150e6),
}
PROFILE_SPECIFY_SLOTS = 2


def profile_ms(prof, method, path):
    for methods, rx, ms in prof['ms']:
        if method in methods and rx.match(path):
            return ms
    return prof['other_ms']


class Faults:
    def __init__(self, seed, defaults=FAULT_DEFAULTS):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.defaults = dict(defaults)           # what reset returns to (--profile included)
        self.v = dict(self.defaults)

    def get(self, k):
        with self.lock:
            return self.v[k]

    def roll(self, key, path):
        """Seeded coin toss for the rate faults, limited to error_paths when given."""
        with self.lock:
            rate, paths = self.v[key], self.v['error_paths']
            if not rate or (paths and not any(path.startswith(p) for p in paths)):
                return False
            return self.rng.random() < rate

    def take_below(self, key, n):
        """A one-shot index: its value once, when below n; else None."""
        with self.lock:
            k = self.v[key]
            if k is None or k >= n:
                return None
            self.v[key] = None
            return k

    def take(self, key):
        with self.lock:
            if self.v[key] > 0:
                self.v[key] -= 1
                return True
            return False


# ------------------------------------------------------------------------------ schema and data

class Table:
    """One Django model of the fixture's schema (a subset of specify7's models.py)."""

    def __init__(self, name, d):
        self.name, self.model, self.tableid = name, d['model'], d['tableid']
        self.ordering = d.get('ordering', [])
        # field: (type, max_length, nullable, db_column, default)
        self.fields = {f[0]: (f[1], f[2], f[3], f[4], f[5] if len(f) > 5 else None) for f in d['fields']}
        # fk: (target, nullable, db_column, flags) flags: d=dependent o=one-to-one c=cascade n=set null
        self.fks = {f[0]: (f[1], f[2], f[3], f[4]) for f in d['fks']}
        self.rev1 = d['rev1']                       # reverse one-to-one: [name, src, fk, flags]
        self.tomany = {r[0]: r for r in d['tomany']}   # reverse FKs the datamodel exposes
        self.hidden = {r[0]: r for r in d['hidden']}   # reverse FKs/M2M only the ORM knows
        self.reverse = {**{r[0]: r for r in self.rev1}, **self.hidden, **self.tomany}

    def choices(self):
        names = {'id', *self.fields, *self.fks, *(f + '_id' for f in self.fks), *self.reverse}
        return ', '.join(sorted(names))


def uri(table, id=None):
    return '/api/specify/%s/' % table + ('' if id is None else '%d/' % id)


URI_RE = re.compile(r'^/api/specify/(\w+)/($|(\d+))')


class Parent:
    """Marks a FK value patched in by the parent object (Django passes the instance)."""

    def __init__(self, table, id):
        self.table, self.id = table, id


class DB:
    """Rows in dicts; one transaction at a time (callers hold the app's data lock)."""

    def __init__(self, fixture):
        self.tables = {n: Table(n, d) for n, d in fixture['schema'].items()}
        self.all_tables = set(fixture['all_tables'])
        self.rows = {n: {} for n in self.tables}
        self.next_id = {n: 1 for n in self.tables}
        self.snap = None
        for t, rows in fixture['rows'].items():
            for r in rows:
                self.insert(t, self.blank(t, r))

    def blank(self, t, vals=None):
        T, row = self.tables[t], {'id': None}
        for f, (ftype, _, null, _, default) in T.fields.items():
            row[f] = default if default is not None else (None if null or ftype not in ('char', 'text') else '')
        for f in T.fks:
            row[f] = None
        row.update(vals or {})
        ts = row.get('timestampcreated') or now_iso()
        for f in ('timestampcreated', 'timestampmodified'):
            if f in T.fields and row.get(f) is None:
                row[f] = ts
        return row

    # -- transactions: first-touch snapshots, restored on rollback (ids are not reused, as in MySQL)
    def begin(self):
        self.snap = {}

    def commit(self):
        self.snap = None

    def rollback(self):
        for (t, id), old in self.snap.items():
            if old is None:
                self.rows[t].pop(id, None)
            else:
                self.rows[t][id] = old
        self.snap = None

    def _touch(self, t, id):
        if self.snap is not None and (t, id) not in self.snap:
            old = self.rows[t].get(id)
            self.snap[(t, id)] = dict(old) if old is not None else None

    def insert(self, t, row):
        if row.get('id') is None:
            row['id'] = self.next_id[t]
        self.next_id[t] = max(self.next_id[t], row['id'] + 1)
        self._touch(t, row['id'])
        self.rows[t][row['id']] = row
        return row

    def update(self, t, id, changes):
        self._touch(t, id)
        self.rows[t][id].update(changes)

    def remove(self, t, id):
        self._touch(t, id)
        self.rows[t].pop(id, None)

    def get(self, t, id):
        return self.rows.get(t, {}).get(id)

    def children(self, src, fk, id):
        rows = self.rows.get(src)
        return sorted((r for r in rows.values() if r.get(fk) == id), key=self.order_key(src)) if rows else []

    def order_key(self, t):
        """Model Meta.ordering (e.g. Determination: -iscurrent), then the primary key."""
        ordering = self.tables[t].ordering

        def key(r):
            k = []
            for o in ordering:
                v = r.get(o.lstrip('-'))
                v = -int(bool(v)) if o.startswith('-') else v
                k.append((v is not None, v))
            return k + [r['id']]
        return key

    def table(self, name):
        """get_model_or_404: model names are matched case-insensitively."""
        T = self.tables.get(name.lower())
        if T is None and name.lower() not in self.all_tables:
            raise http404("module 'specifyweb.specify.models' has no attribute '%s'" % name.capitalize())
        return T

    def get_or_404(self, name, id):
        T = self.table(name)
        row = self.get(T.name, id) if T else None
        if row is None:
            raise http404('No %s matches the given query.' % (T.model if T else name.capitalize()))
        return T, row


# ------------------------------------------------------------------------------ Django field semantics

def dj_int(v, name='id'):
    """IntegerField.get_prep_value: int(), with Django's message on failure."""
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError) as e:
        raise e.__class__("Field '%s' expected a number but got %r." % (name, v))


def validation_error(msg, code, value):
    return exc('ValidationError', msg, code, {'value': value})


def to_bool(v, null):
    if v in (True, False) and not isinstance(v, str):
        return bool(v)
    if v in ('t', 'True', '1'):
        return True
    if v in ('f', 'False', '0'):
        return False
    if v is None and null:
        return None
    raise validation_error('\u201c%(value)s\u201d value must be either True' +
                           (', False, or None.' if null else ' or False.'), 'invalid', v)


DATE_RE = re.compile(r'(\d{4})-(\d{1,2})-(\d{1,2})$')
DATETIME_RE = re.compile(r'(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,6})\d*)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$')


def to_date(v):
    if isinstance(v, str):
        m = DATE_RE.match(v) or DATETIME_RE.match(v)
        if m:
            try:
                return datetime.date(*map(int, m.groups()[:3])).isoformat()
            except ValueError:
                raise validation_error('\u201c%(value)s\u201d value has the correct format (YYYY-MM-DD) '
                                       'but it is an invalid date.', 'invalid_date', v)
    raise validation_error('\u201c%(value)s\u201d value has an invalid date format. It must be in '
                           'YYYY-MM-DD format.', 'invalid', v)


def to_datetime(v):
    if isinstance(v, str):
        m = DATETIME_RE.match(v)
        try:
            if m:
                g = m.groups()
                return datetime.datetime(*map(int, g[:5]), int(g[5] or 0),
                                         int((g[6] or '0').ljust(6, '0'))).isoformat()
            if DATE_RE.match(v):
                return datetime.datetime(*map(int, DATE_RE.match(v).groups())).isoformat()
        except ValueError:
            raise validation_error('\u201c%(value)s\u201d value has the correct format (YYYY-MM-DD '
                                   'HH:MM[:ss[.uuuuuu]][TZ]) but it is an invalid date/time.', 'invalid_datetime', v)
    raise validation_error('\u201c%(value)s\u201d value has an invalid format. It must be in '
                           'YYYY-MM-DD HH:MM[:ss[.uuuuuu]][TZ] format.', 'invalid', v)


def to_decimal(v):
    try:
        d = decimal.Decimal(str(v) if isinstance(v, float) else v)
        if not d.is_finite():
            raise decimal.InvalidOperation
        return str(d.quantize(decimal.Decimal('1.0000000000')))
    except (decimal.InvalidOperation, TypeError, ValueError):
        raise validation_error('\u201c%(value)s\u201d value must be a decimal number.', 'invalid', v)


def prep_save(T, name, v):
    """Python-side conversion Django does before the INSERT/UPDATE."""
    ftype, _, null, _, _ = T.fields[name]
    if v is None:
        return None
    if ftype in ('char', 'text'):
        return v if isinstance(v, str) else str(v)
    if ftype == 'int':
        return dj_int(v, name)
    if ftype == 'bool':
        return to_bool(v, null)
    if ftype == 'float':
        try:
            return float(v)
        except (TypeError, ValueError) as e:
            raise e.__class__("Field '%s' expected a number but got %r." % (name, v))
    return {'date': to_date, 'datetime': to_datetime, 'decimal': to_decimal}[ftype](v)


def db_check(T, row):
    """What MariaDB (strict mode) refuses: NULL in NOT NULL columns, too long text, int overflow."""
    for name, (ftype, maxlen, null, col, _) in T.fields.items():
        v = row.get(name)
        if v is None and not null:
            raise exc('IntegrityError', 1048, "Column '%s' cannot be null" % col)
        if maxlen is not None and isinstance(v, str) and len(v) > maxlen:
            raise exc('DataError', 1406, "Data too long for column '%s' at row 1" % col)
        if ftype == 'int' and isinstance(v, int) and not -2 ** 31 <= v < 2 ** 31:
            raise exc('DataError', 1264, "Out of range value for column '%s' at row 1" % col)
    for name, (target, null, col, _) in T.fks.items():
        if row.get(name) is None and not null:
            raise exc('IntegrityError', 1048, "Column '%s' cannot be null" % col)


# ------------------------------------------------------------------------------ Django filter()

LOOKUPS = ['exact', 'iexact', 'gt', 'gte', 'lt', 'lte', 'in', 'contains', 'icontains', 'startswith',
           'istartswith', 'endswith', 'iendswith', 'range', 'isnull', 'regex', 'iregex']
PATTERN = {'contains', 'icontains', 'startswith', 'istartswith', 'endswith', 'iendswith', 'regex', 'iregex'}
FIELD_CLASS = {'char': 'CharField', 'text': 'TextField', 'int': 'IntegerField', 'bool': 'BooleanField',
               'date': 'DateField', 'datetime': 'DateTimeField', 'decimal': 'DecimalField', 'float': 'FloatField'}


class Path:
    """A resolved ``a__b__c`` keyword: relation hops, the final field and the lookup."""

    def __init__(self, hops, ftype, fname, lookup):
        self.hops, self.ftype, self.fname, self.lookup = hops, ftype, fname, lookup


def resolve(db, T, keyword, allow_lookup=True):
    """Query.names_to_path + build_lookup, with Django's FieldError texts (raised as 400 Reply)."""
    names = keyword.split('__')
    hops, cur, i = [], T, 0
    ftype = fname = None
    while i < len(names):
        n = names[i]
        if cur is None:                         # a table the stand-in does not model: no rows
            hops.append(None)
            i += 1
            continue
        if n == 'pk':
            n = 'id'
        base = n[:-3] if n.endswith('_id') and n[:-3] in cur.fks else n
        if n == 'id' or n in cur.fields:
            ftype, fname = ('int' if n == 'id' else cur.fields[n][0]), n
            i += 1
            break
        if base in cur.fks or n in cur.reverse:
            rel = ('fk', base, cur.fks[base][0]) if base in cur.fks else ('rev', n) + tuple(cur.reverse[n][1:3])
            target = rel[2] if rel[0] == 'fk' else rel[2]
            nxt = db.tables.get(target)
            # keep walking only if the next name is a field of the related model
            if i + 1 < len(names) and (nxt is None or names[i + 1] in ('id', 'pk') or names[i + 1] in nxt.fields
                                        or names[i + 1] in nxt.fks or names[i + 1] in nxt.reverse
                                        or names[i + 1][:-3] in nxt.fks):
                hops.append(rel)
                cur = nxt
                i += 1
                continue
            hops.append(rel)
            ftype, fname = 'int', 'ForeignKey' if rel[0] == 'fk' else 'ManyToOneRel'
            i += 1
            break
        if not hops or i == 0:
            raise Reply(400, "Cannot resolve keyword '%s' into field. Choices are: %s" % (n, cur.choices()))
        break
    if ftype is None:                           # walked into an unmodeled table
        return Path(hops, None, None, names[-1] if names[-1] in LOOKUPS else 'exact')
    rest = names[i:]
    if not allow_lookup and rest:
        raise Reply(400, "Cannot resolve keyword %r into field. Join on '%s' not permitted." % (rest[0], names[i - 1]))
    if len(rest) > 1 or (rest and rest[0] not in LOOKUPS):
        cls = fname if fname in ('ForeignKey', 'ManyToOneRel') else FIELD_CLASS.get(ftype, 'AutoField')
        bad = rest[0]
        near = difflib.get_close_matches(bad, LOOKUPS)
        raise Reply(400, "Unsupported lookup '%s' for %s or join on the field not permitted%s" % (
            bad, 'AutoField' if fname == 'id' else cls, ', perhaps you meant %s?' % ' or '.join(near) if near else '.'))
    return Path(hops, ftype, fname, rest[0] if rest else 'exact')


def path_values(db, row, p):
    """All values the path reaches from row (to-many hops fan out; a missing row gives None)."""
    vals = [row]
    for hop in p.hops:
        nxt = []
        for r in vals:
            if r is None or hop is None:
                nxt.append(None)
            elif hop[0] == 'fk':
                nxt.append(db.get(hop[2], r.get(hop[1])) if r.get(hop[1]) is not None else None)
            else:
                kids = db.children(hop[2], hop[3], r['id']) if hop[2] in db.tables else []
                nxt.extend(kids or [None])
        vals = nxt
    if p.fname in ('ForeignKey', 'ManyToOneRel'):
        return [None if r is None else r['id'] for r in vals]
    return [None if r is None or p.fname is None else r.get(p.fname) for r in vals]


def prep_filter(ftype, name, v):
    """get_prep_value for a lookup's right-hand side."""
    if ftype in ('char', 'text', None):
        return str(v)
    if ftype == 'int':
        return dj_int(v, 'id' if name in ('ForeignKey', 'ManyToOneRel') else name)
    if ftype == 'float':
        try:
            return float(v)
        except (TypeError, ValueError) as e:
            raise e.__class__("Field '%s' expected a number but got %r." % (name, v))
    if ftype == 'bool':
        return to_bool(v, True)
    return {'date': to_date, 'datetime': to_datetime, 'decimal': lambda x: decimal.Decimal(to_decimal(x))}[ftype](v)


def build_filter(db, T, key, raw):
    """apply_filters() value munging, then one Django lookup; returns a row predicate."""
    if key.endswith('__isnull'):
        val = {'true': True, 'false': False}.get(raw.lower(), raw)
    elif key.endswith('__in') or key.endswith('__range'):
        val = raw.split(',')
    else:
        val = (raw.lower() == 'true') if raw.lower() in ('true', 'false') else raw
    p = resolve(db, T, key)
    lk, text = p.lookup, p.ftype in ('char', 'text', None)
    try:
        if lk == 'isnull':
            if not isinstance(val, bool):
                raise ValueError('The QuerySet value for an isnull lookup must be True or False.')
            rhs = val
        elif lk in ('in', 'range'):
            rhs = [prep_filter(p.ftype, p.fname, v) for v in val]
            if lk == 'range' and len(rhs) != 2:
                raise exc('TypeError', 'not all arguments converted during string formatting')
        elif lk in PATTERN:
            rhs = str(val)
        else:
            rhs = prep_filter(p.ftype, p.fname, val)
    except ValueError as e:                     # FilterError → 400 text
        raise Reply(400, str(e))
    if text and lk in ('exact', 'in', 'gt', 'gte', 'lt', 'lte', 'range'):
        rhs = [collate(x) for x in rhs] if isinstance(rhs, list) else collate(rhs)
    if lk == 'in':
        rhs = set(rhs)                           # big __in lists stay fast

    def one(v):
        if lk == 'isnull':
            return (v is None) == rhs
        if v is None:
            return False
        if text and lk in ('exact', 'in', 'gt', 'gte', 'lt', 'lte', 'range'):
            v = collate(v)
        elif p.ftype == 'decimal':
            v = decimal.Decimal(v)
        s = str(v)
        return {'exact': lambda: v == rhs, 'iexact': lambda: fold(s) == fold(rhs),
                'in': lambda: v in rhs, 'range': lambda: rhs[0] <= v <= rhs[1],
                'gt': lambda: v > rhs, 'gte': lambda: v >= rhs, 'lt': lambda: v < rhs, 'lte': lambda: v <= rhs,
                'contains': lambda: rhs in s, 'icontains': lambda: fold(rhs) in fold(s),
                'startswith': lambda: s.startswith(rhs), 'istartswith': lambda: fold(s).startswith(fold(rhs)),
                'endswith': lambda: s.endswith(rhs), 'iendswith': lambda: fold(s).endswith(fold(rhs)),
                'regex': lambda: re.search(rhs, s) is not None,
                'iregex': lambda: re.search(rhs, s, re.I) is not None}[lk]()
    return lambda row: any(one(v) for v in path_values(db, row, p))


def sort_rows(db, T, rows, fields):
    """order_by(): NULLs first ascending (MySQL), text by collation; '-' descends."""
    for f in reversed(fields):
        desc = f.startswith('-')
        p = resolve(db, T, f.lstrip('-'), allow_lookup=False)
        text = p.ftype in ('char', 'text')

        def key(r, p=p, text=text):
            v = path_values(db, r, p)[0]
            return (v is not None, collate(v) if text and v is not None else v)
        rows.sort(key=key, reverse=desc)
    return rows


# ------------------------------------------------------------------------------ the application

class App:
    def __init__(self, args):
        fixture_path = args.fixture or os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixture.json')
        with open(fixture_path, encoding='utf-8') as f:
            self.fx = json.load(f)
        self.fixture_dir = os.path.dirname(os.path.abspath(fixture_path))
        self.db = DB(self.fx)
        self.lock = threading.RLock()            # the data model
        self.files_lock = threading.Lock()       # the asset store's index
        self.stats_lock = threading.Lock()
        self.faults = Faults(args.seed, dict(FAULT_DEFAULTS, profile=args.profile))
        self.specify_slots = threading.BoundedSemaphore(PROFILE_SPECIFY_SLOTS)   # --profile: two cores
        self.asset_turn = threading.Lock()       # --profile: the asset server, one request at a time
        self.key = args.asset_key or self.fx.get('attachment_key', 'test-attachment-key')
        self.verbose = args.verbose
        self.sessions = {}                       # key -> {'user': id, 'created': t}
        self.csrf = {}                           # issued token -> 'active' | 'rotated'
        self.requests = {}
        self.busy = {}                           # "METHOD /path" -> requests of it being served now
        self.busiest = {}                        # ... and the most of them served at once
        self.met = set()                         # fault meet: the kinds that came
        self.meet_cond = threading.Condition()
        self.server_urls = None                  # what Specify learned from web_asset_store.xml
        self.time_delta = None                   # Specify's idea of (asset clock - own clock)
        self.tmp_state = args.state_dir is None
        self.state = os.path.abspath(args.state_dir or tempfile.mkdtemp(prefix='standin-'))
        self.originals = os.path.join(self.state, 'originals')
        self.tmpdir = os.path.join(self.state, 'tmp')
        os.makedirs(self.originals, exist_ok=True)
        os.makedirs(self.tmpdir, exist_ok=True)
        self.files = {}
        for name in os.listdir(self.originals):  # a reused state dir keeps its files
            p = os.path.join(self.originals, name)
            if os.path.isfile(p):
                self.files[name] = file_info(p)

    def count(self, method, path):
        with self.stats_lock:
            k = '%s %s' % (method, path)
            self.requests[k] = self.requests.get(k, 0) + 1

    @contextlib.contextmanager
    def serving(self, method, path):
        """Around the serving of one request (its profile's slot included): how many of its
        kind are served at once, at the most."""
        k = '%s %s' % (method, path)
        with self.stats_lock:
            self.busy[k] = self.busy.get(k, 0) + 1
            self.busiest[k] = max(self.busiest.get(k, 0), self.busy[k])
        try:
            yield
        finally:
            with self.stats_lock:
                self.busy[k] -= 1

    def meet(self, kind, want):
        """Fault `meet` ["METHOD /path", ...]: requests of those kinds wait for one of each to
        have come, meet_s at the most; True when they met.  A test of what a client sends side
        by side: one that sends them one after the other waits in vain."""
        deadline = time.monotonic() + float(self.faults.get('meet_s'))
        with self.meet_cond:
            self.met.add(kind)
            self.meet_cond.notify_all()
            while not set(want) <= self.met:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.meet_cond.wait(left)
            return True

    # -- clocks and tokens (§3.3)
    def asset_now(self):
        return int(time.time()) + int(self.faults.get('asset_clock_skew_s') or 0)

    def specify_timestamp(self):
        return int(time.time()) + self.time_delta   # TypeError when unconfigured, as in Specify

    def token(self, ts, name):
        return hmac.new(self.key.encode(), (str(ts) + name).encode(), 'md5').hexdigest() + ':' + str(ts)

    # -- users, collections, sessions
    def user_by_name(self, name):
        if not isinstance(name, str):
            return None                          # the lookup follows the column's _ci collation
        return next((u for u in self.db.rows['specifyuser'].values() if collate(u['name']) == collate(name)), None)

    def access(self, user):
        return set(self.fx['collection_access'].get(user['name'], []))

    def permitted(self, user, collectionid, resource, action):
        """permissions.query(): admins hold ('%', '%') institution-wide; anyone else the policies of
        the roles they have in that collection (spuserrole + sprolepolicy), matched with SQL LIKE."""
        if user['name'] in self.fx.get('admins', []):
            return True
        roles = self.fx.get('user_roles', {}).get(user['name'], {}).get(str(collectionid), [])
        return any(sql_like(resource, res) and any(sql_like(action, a) for a in actions)
                   for role in roles for res, actions in self.fx['roles'][role].items())

    def user_collections(self, user):
        return [c for i, c in sorted(self.db.rows['collection'].items()) if i in self.access(user)]

    def agent_for(self, user, coll):
        disc = self.db.get('discipline', coll['discipline'])
        agents = [a for a in self.db.rows['agent'].values()
                  if a['specifyuser'] == user['id'] and a['division'] == disc['division']]
        if len(agents) > 1:
            raise exc('MultipleObjectsReturned', 'get() returned more than one Agent -- it returned %d!' % len(agents))
        return agents[0] if agents else None

    def session_get(self, key):
        s = self.sessions.get(key)
        ttl = self.faults.get('session_ttl_s')
        if s and ttl is not None and time.time() - s['created'] > ttl:
            del self.sessions[key]
            s = None
        return s

    # -- JSON of records (serializers._obj_to_data)
    def to_data(self, t, row, check=None):
        if check:
            check()
        db, T, id = self.db, self.db.tables[t], row['id']
        out = {}
        for name, src, fk, flags in T.rev1:
            kids = db.children(src, fk, id) if src in db.tables else []
            out[name] = (self.to_data(src, kids[0], check) if 'd' in flags else uri(src, kids[0]['id'])) if kids else None
        out['id'] = id
        for f in T.fields:
            if not (t == 'specifyuser' and f == 'password'):
                out[f] = row.get(f)
        for f, (target, _, _, flags) in T.fks.items():
            v = row.get(f)
            rel = db.get(target, v) if v is not None and 'd' in flags and target in db.tables else None
            out[f] = None if v is None else self.to_data(target, rel, check) if rel else uri(target, v)
        for name, src, fk, flags in T.tomany.values():
            if 'd' in flags:
                out[name] = [self.to_data(src, r, check) for r in db.children(src, fk, id)] if src in db.tables else []
            else:
                out[name] = uri(src) + '?' + urllib.parse.urlencode([(fk, str(id))])
        out['resource_uri'] = uri(t, id)
        if t == 'collectionobject':               # calculated_fields.py
            preps = db.children('preparation', 'collectionobject', id)
            total = sum(p.get('countamt') or 0 for p in preps)
            out.update(actualTotalCountAmt=total, totalCountAmt=total,
                       currentdetermination=next((d['resource_uri'] for d in out['determinations'] if d['iscurrent']), None),
                       isMemberOfCOG=False)
        elif t == 'preparation':
            out.update(actualCountAmt=max(0, row.get('countamt') or 0), isonloan=False, isongift=False,
                       isondisposal=False, isonexchangeout=False, isonexchangein=False)
        elif t == 'specifyuser':
            out['isadmin'] = row['name'] in self.fx.get('admins', [])
        return out

    # -- writes (api/crud.py and models_utils/relationships.py)
    def clean(self, T, data):
        """cleanData: case-insensitive keys, unknown ones ignored, guid read-only but for trees."""
        if not isinstance(data, dict):
            raise exc('AttributeError', "'%s' object has no attribute 'keys'" % type(data).__name__)
        names = {n.lower(): n for n in ['id', *T.fields, *T.fks, *T.reverse]}
        out = {}
        for k, v in data.items():
            if k in ('resource_uri', 'recordset_info', '_tableName'):
                continue
            n = k if k in names.values() else names.get(k.lower())
            if n is not None:
                out[n] = v
            if k.endswith('precision') and k[:-9] in data:
                has_date = data[k[:-9]] not in (None, '')
                if has_date and data[k] is None:
                    out[k] = 1
                elif not has_date and data[k] is not None:
                    out[k] = None
        if T.name not in ('taxon', 'geography'):
            out.pop('guid', None)
        if T.name == 'specifyuser':
            out.pop('password', None)
        return out

    def need_agent(self, ctx):
        """permissions.enforce() with no Agent in the logged-in division: AssertionError (§6)."""
        if ctx.agent() is None:
            raise exc('AssertionError', "Agent 'None' is not a SpecifyUser",
                      {'actor': '<SimpleLazyObject: None>', 'localizationKey': 'actorIsNotSpecifyUser'})

    def create(self, ctx, t, data, parent=None):
        T = self.db.table(t) if isinstance(t, str) else t
        if T is None:
            raise exc('AttributeError', "'NoneType' object has no attribute 'objects'")
        data = self.clean(T, data)
        row = self.db.blank(T.name)
        self.set_fks(ctx, T, row, data)
        self.set_fields(T, row, data)
        if 'createdbyagent' in T.fks:
            agent = ctx.agent()
            if agent is None:
                raise exc('ValueError', 'Cannot assign "<SimpleLazyObject: None>": "%s.createdbyagent" must be a '
                          '"Agent" instance.' % T.model)
            row['createdbyagent'] = agent['id']
        if 'collectionmemberid' in T.fields:
            row['collectionmemberid'] = ctx.collection()['id']
        if self.save(ctx, T, row, insert=True):
            self.need_agent(ctx)                 # check_table_permissions(create)
        self.set_to_many(ctx, T, row, data)
        return row

    def update(self, ctx, t, id, version, data):
        T, old = self.db.get_or_404(t, dj_int(id))
        self.need_agent(ctx)                     # check_table_permissions(update)
        data = self.clean(T, data)
        row = dict(old)
        to_delete = self.set_fks(ctx, T, row, data)
        self.set_fields(T, row, data)
        if 'modifiedbyagent' in T.fks:
            row['modifiedbyagent'] = ctx.agent()['id']
        row['version'] = self.bump_version(T, old, version)
        self.save(ctx, T, row, insert=False)
        for dt, did in to_delete:
            if self.db.get(dt, did):
                self.delete(ctx, dt, did)
        self.set_to_many(ctx, T, row, data)
        return self.db.get(T.name, row['id'])

    def update_or_create(self, ctx, t, data, parent=None):
        if isinstance(data, dict) and 'id' in data:
            return self.update(ctx, t, data['id'], data['version'], data)   # KeyError 'version' → 500
        return self.create(ctx, t, data, parent)

    def bump_version(self, T, row, version):
        """Optimistic locking: 400 without a usable version, 409 when stale."""
        try:
            version = int(version)
        except (ValueError, TypeError):
            raise Reply(400, '%s object cannot be updated without version info' % T.model)
        if self.db.get(T.name, row['id'])['version'] != version:
            raise Reply(409, '%s object %d is out of date' % (T.model, row['id']))
        self.db.update(T.name, row['id'], {'version': version + 1})
        return version + 1

    def set_fields(self, T, row, data):
        for k, v in data.items():
            if k in T.fields and k != 'id':
                row[k] = v.replace('T', ' ') if T.fields[k][0] == 'datetime' and isinstance(v, str) else v

    def set_fks(self, ctx, T, row, data):
        """handle_fk_fields: URI, null, the parent, or nested data (created/updated first)."""
        to_delete = []
        items = sorted(data.items(), key=lambda kv: kv[0] != 'collection')   # domain field first
        for name, val in items:
            if name not in T.fks:
                continue
            target, _, _, flags = T.fks[name]
            dep, old = 'd' in flags, row.get(name)
            if val is None:
                row[name] = None
                if dep and old is not None:
                    to_delete.append((target, old))
            elif isinstance(val, Parent):
                row[name] = val.id
            elif isinstance(val, str):
                if dep:
                    raise exc('AssertionError', "didn't get inline data for dependent field %s in %s object (%s): %r"
                              % (name, T.model, row['id'], val))
                m = URI_RE.match(val)
                if not m:
                    raise exc('AssertionError', 'Bad URI: %s' % val)
                tm = self.db.tables.get(target)
                model = tm.model if tm else target.capitalize()
                if m.group(1).lower() != model.lower():
                    raise exc('AssertionError', '%s does not match model in uri: %s' % (model, m.group(1)))
                if m.group(3) is None:
                    raise exc('AssertionError')
                self.db.get_or_404(m.group(1), int(m.group(3)))
                row[name] = int(m.group(3))
            elif isinstance(val, dict):
                rel = self.update_or_create(ctx, target, val, row if dep else None)
                row[name] = rel['id']
                if dep and old is not None and old != rel['id']:
                    to_delete.append((target, old))
            else:
                raise exc('Exception', 'bad foreign key field in data: %s' % name)
        return to_delete

    def set_to_many(self, ctx, T, row, data):
        """Dependent collections are replaced: listed items kept/created, the rest deleted."""
        for name, val in data.items():
            rel = T.tomany.get(name) or T.hidden.get(name)
            if rel is None:
                continue
            dep = 'd' in rel[3]
            if isinstance(val, list):
                if not dep:
                    raise exc('AssertionError', 'got inline data for non dependent field %s in %s object (%s): %r'
                              % (name, T.model, row['id'], val))
            elif isinstance(val, dict):
                if dep:
                    raise exc('AssertionError', 'got inline dictionary data for dependent field %s in %s object (%s)'
                              % (name, T.model, row['id']))
                continue   # the experimental independent-collection update is not modeled
            else:
                continue   # the collection's URI, as GET returns it
            _, src, fk, _ = rel
            keep = []
            for item in val:
                if not isinstance(item, dict):
                    raise exc('TypeError', "'%s' object does not support item assignment" % type(item).__name__)
                item = dict(item, **{fk: Parent(T.name, row['id'])})
                keep.append(self.update_or_create(ctx, src, item, row)['id'])
            for kid in self.db.children(src, fk, row['id']) if src in self.db.tables else []:
                if kid['id'] not in keep:
                    self.need_agent(ctx)
                    self.db_delete(src, kid['id'])

    def save(self, ctx, T, row, insert):
        """Model.save(): business rules (pre_save), field conversion, DB constraints."""
        t, db = T.name, self.db
        base = t[:-len('attachment')] if t.endswith('attachment') and 'attachment' in T.fks else None
        if base is not None and base in T.fks:
            if row.get('attachment') is None:
                return False                     # attachment_jointable_save: AbortSave, nothing stored
            if row.get(base) is None:
                raise exc('RelatedObjectDoesNotExist', '%s has no %s.' % (T.model, base))
            attachee = db.get(base, row[base])
            scopetype, scopeid = self.scope_of(base, attachee)
            db.update('attachment', row['attachment'], {'tableid': db.tables[base].tableid, 'scopetype': scopetype,
                                                        'scopeid': scopeid, 'timestampmodified': now_iso()})
            db_check(db.tables['attachment'], db.get('attachment', row['attachment']))
        if t == 'attachment' and insert and row.get('tableid') is None:
            row['tableid'] = T.tableid           # placeholder 41 until a join row claims it
        if 'guid' in T.fields and t not in ('taxon', 'geography') and not (row.get('guid') or '').strip():
            row['guid'] = str(uuid.uuid4())
        if t == 'collectionobject':
            if row.get('collectionmemberid') is None:
                row['collectionmemberid'] = row.get('collection')
            if row.get('collectionobjecttype') is None and row.get('collection') is not None:
                row['collectionobjecttype'] = (db.get('collection', row['collection']) or {}).get('collectionobjecttype')
        if t in ('determination', 'preparation') and row.get('collectionmemberid') is None and row.get('collectionobject'):
            row['collectionmemberid'] = db.get('collectionobject', row['collectionobject'])['collectionmemberid']
        for f in T.fields:
            row[f] = prep_save(T, f, row.get(f))
        now = now_iso()
        if row.get('timestampcreated') is None and 'timestampcreated' in T.fields:
            row['timestampcreated'] = now
        if 'timestampmodified' in T.fields and (not insert or row.get('timestampmodified') is None):
            row['timestampmodified'] = now
        if t == 'determination':
            taxon, seen = row.get('taxon'), 0
            while taxon is not None and (db.get('taxon', taxon) or {}).get('acceptedtaxon') not in (None, taxon):
                taxon, seen = db.get('taxon', taxon)['acceptedtaxon'], seen + 1
                if seen > 100:
                    raise exc('AssertionError', 'Could not find accepted taxon for synonymized taxon')
            row['preferredtaxon'] = taxon
        db_check(T, row)
        if t == 'determination' and row.get('iscurrent'):
            for d in db.children('determination', 'collectionobject', row['collectionobject']):
                if d['id'] != row['id'] and d['iscurrent']:
                    db.update('determination', d['id'], {'iscurrent': False})
        if insert:
            db.insert(t, row)
        else:
            db.update(t, row['id'], row)
        return True

    def scope_of(self, t, row):
        """Scoping.from_instance: (scopetype, scopeid) of an attachee."""
        if t in ('taxon',):
            return 1, self.db.get('taxontreedef', row['definition'])['discipline']
        T = self.db.tables[t]
        if 'division' in T.fks and row.get('division') is not None:
            return 2, row['division']
        if 'discipline' in T.fks and row.get('discipline') is not None:
            return 1, row['discipline']
        if 'collectionmemberid' in T.fields:
            return 0, row['collectionmemberid']
        if 'collection' in T.fks and row.get('collection') is not None:
            return 0, row['collection']
        return 3, min(self.db.rows['institution'])

    def delete(self, ctx, t, id, version=None):
        """delete_resource/delete_obj: version check, permission, then the ORM cascade."""
        T, row = self.db.get_or_404(t, dj_int(id))
        deps = [(f[0], row[n]) for n, f in T.fks.items() if 'd' in f[3] and row.get(n) is not None]
        if version is not None:
            self.bump_version(T, row, version)
        if ctx is not None:
            self.need_agent(ctx)
        self.db_delete(T.name, row['id'], files=ctx is not None)
        for dt, did in deps:
            if dt in self.db.tables and self.db.get(dt, did):
                self.db_delete(dt, did, files=ctx is not None)

    def db_delete(self, t, id, files=True):
        """Model.delete(): Django's Collector (cascade, set null, protect: all checked before
        anything is deleted), the deletes, then the post_delete business rules."""
        db = self.db
        if db.get(t, id) is None:
            return
        doomed, nulls, protected = [(t, id)], [], []
        for dt, did in doomed:                   # grows while we walk it
            for name, src, fk, flags in db.tables[dt].reverse.values():
                if fk is None or src not in db.tables:
                    continue
                for k in db.children(src, fk, did):
                    if 'c' in flags:
                        if (src, k['id']) not in doomed:
                            doomed.append((src, k['id']))
                    else:
                        (nulls if 'n' in flags else protected).append((src, k['id'], fk, dt))
        blocked = [p for p in protected if p[:2] not in doomed]
        if blocked:
            src, _, fk, dt = blocked[0]
            raise exc('ProtectedError', "Cannot delete some instances of model '%s' because they are referenced "
                      "through protected foreign keys: '%s.%s'." % (db.tables[dt].model, db.tables[src].model, fk),
                      {'%s object (%d)' % (db.tables[b[0]].model, b[1]) for b in blocked})
        for src, kid, fk, _ in nulls:
            if (src, kid) not in doomed:
                db.update(src, kid, {fk: None})
        rows = [(dt, db.get(dt, did)) for dt, did in doomed]
        for dt, did in reversed(doomed):
            db.remove(dt, did)
        for dt, row in rows:
            T = db.tables[dt]
            if dt.endswith('attachment') and 'attachment' in T.fks and row.get('attachment') is not None:
                self.db_delete('attachment', row['attachment'], files)       # attachment_jointable_deletion
            elif dt == 'attachment' and row.get('attachmentlocation') is not None:
                if files:
                    self.delete_attachment_file(row['attachmentlocation'])  # attachment_deletion
                else:
                    self.remove_file(row['attachmentlocation'])

    def first_collection_name(self):
        return self.db.rows['collection'][min(self.db.rows['collection'])]['collectionname']

    def delete_attachment_file(self, loc):
        """attachment_gw.delete_attachment_file: a real POST to the asset server's delete URL."""
        data = {'filename': loc, 'coll': self.first_collection_name(), 'token': self.token(self.specify_timestamp(), loc)}
        u = urllib.parse.urlsplit(self.server_urls['delete'])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request('POST', u.path, urllib.parse.urlencode(data),
                          {'Content-Type': 'application/x-www-form-urlencoded'})
            r = conn.getresponse()
            text = r.read().decode('utf-8', 'replace')
        except (OSError, http.client.HTTPException) as e:
            raise exc('ConnectionError', str(e))
        finally:
            conn.close()
        if r.getheader('X-Timestamp'):           # update_time_delta
            self.time_delta = int(r.getheader('X-Timestamp')) - int(time.time())
        if r.status not in (200, 404):
            raise exc('AttachmentError', 'Deletion failed: %s' % text)

    def remove_file(self, name):
        with self.files_lock:
            self.files.pop(name, None)
            try:
                os.remove(os.path.join(self.originals, name))
            except OSError:
                pass

    # -- reads (api/crud.py get_collection, filter_by_col.py)
    def filter_by_collection(self, T, rows, coll):
        db = self.db
        disc = db.get('discipline', coll['discipline'])
        div = db.get('division', disc['division'])
        if T.name == 'attachment':
            ok = {(None, None), (0, coll['id']), (1, disc['id']), (2, div['id']), (3, div['institution'])}
            return [r for r in rows if r['scopetype'] in (None, 10) or (r['scopetype'], r['scopeid']) in ok]
        if T.name == 'taxon':
            return [r for r in rows if (db.get('taxontreedef', r['definition']) or {}).get('discipline') == disc['id']]
        if 'collectionmemberid' in T.fields:
            return [r for r in rows if r['collectionmemberid'] == coll['id']]
        hierarchy = [('collectionobject', None), ('collection', coll['id']), ('discipline', disc['id']),
                     ('division', div['id']), ('institution', div['institution'])]
        for name, value in hierarchy:
            if name in T.fks or name in T.reverse:
                if name == 'collectionobject':
                    return [r for r in rows if (db.get('collectionobject', r['collectionobject']) or {}).get('collection') == coll['id']]
                if name in T.fks:
                    return [r for r in rows if r[name] == value]
                raise exc('FieldError', "Cannot resolve keyword '%s' into field." % name)
        raise exc('HierarchyException', 'queryset model %s has no hierarchy field' % T.model)

    def query(self, ctx, T, params, control):
        """apply_filters(): every non-control parameter is a Django filter (§2.1)."""
        preds = [build_filter(self.db, T, k, v) for k, v in params.items() if k not in control]
        if control.get('filterchronostrat'):
            resolve(self.db, T, 'startperiod')
        rows = [r for r in sorted(self.db.rows[T.name].values(), key=self.db.order_key(T.name))
                if all(p(r) for p in preds)]
        if control.get('domainfilter') == 'true':
            rows = self.filter_by_collection(T, rows, ctx.collection())
        return rows


def file_info(path):
    h, size = hashlib.sha256(), 0
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(CHUNK), b''):
            h.update(block)
            size += len(block)
    return {'size': size, 'sha256': h.hexdigest()}


def form_errors(params, rows_form=False):
    """GetCollectionForm / RowsForm validation; errors as Django's form.errors JSON (400)."""
    err, out = {}, {}
    df = params.get('domainfilter', '')
    if df not in ('', 'true', 'false'):
        err['domainfilter'] = ['Select a valid choice. %s is not one of the available choices.' % df]
    out['domainfilter'] = df or None
    for k, default in (('limit', 20), ('offset', 0)):
        v = params.get(k, '').strip()
        try:
            out[k] = default if v == '' else int(re.sub(r'\.0*\s*$', '', v))
        except ValueError:
            err[k] = ['Enter a whole number.']
    out['orderby'] = params.get('orderby') or None
    fc = params.get('filterchronostrat', '')
    out['filterchronostrat'] = not (fc.lower() in ('false', '0') or fc == '')
    if rows_form:
        if not params.get('fields'):
            err['fields'] = ['This field is required.']
        out['fields'], out['distinct'] = params.get('fields'), params.get('distinct') or False
    return err, out


# ------------------------------------------------------------------------------ HTTP plumbing

class Body:
    """The request body, Content-Length or chunked, read on demand in ≤1 MiB pieces.

    "100 Continue" is sent only when the body is first read, so a request refused before that
    (413, faults, 403 ...) never has its body sent by a client that waits for it.
    """

    def __init__(self, h, limit):
        self.h, self.limit, self.total = h, limit, 0
        self.chunked = 'chunked' in h.headers.get('Transfer-Encoding', '').lower()
        cl = h.headers.get('Content-Length')
        self.length = None if self.chunked else int(cl) if cl is not None else 0
        if self.length is not None and self.length < 0:
            raise ValueError('negative Content-Length')
        self.left, self.chunk_left = self.length, 0
        self.expect = h.headers.get('Expect', '').lower() == '100-continue'
        self.done = not self.chunked and self.length == 0
        self.rate = None                         # bytes/s at most (a timing profile), from pace()

    def pace(self, rate, start):
        """Reads no faster than rate bytes/s from the monotonic time start on."""
        self.rate, self.paced_from = rate, start

    def read(self, n=CHUNK):
        if self.done:
            return b''
        if self.expect:
            self.expect = False
            self.h.wfile.write(b'HTTP/1.1 100 Continue\r\n\r\n')
        rf = self.h.rfile
        if not self.chunked:
            data = rf.read(min(n, self.left))
            self.left -= len(data)
        else:
            if self.chunk_left == 0:
                line = rf.readline(1024)
                try:
                    size = int(line.split(b';')[0].strip(), 16)
                except ValueError:
                    raise BadBody('bad chunk size %r' % line)
                if size == 0:
                    while rf.readline(8192) not in (b'\r\n', b'\n', b''):
                        pass
                    self.done = True
                    return b''
                self.chunk_left = size
            data = rf.read(min(n, self.chunk_left))
            self.chunk_left -= len(data)
            if self.chunk_left == 0 and data:
                rf.readline(8)
        if not data:
            raise ConnectionError('client closed the connection mid-body')
        self.total += len(data)
        if self.limit is not None and self.total > self.limit:
            raise TooLarge()
        if self.rate:
            ahead = self.paced_from + self.total / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if not self.chunked and self.left == 0:
            self.done = True
        return data

    def read_all(self):
        parts = []
        while not self.done:
            parts.append(self.read())
        return b''.join(parts)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app, kind, handler, tls=None):
        self.app, self.kind = app, kind
        super().__init__(('127.0.0.1', 0), handler)
        self.tls = tls is not None
        if tls:                                  # accept() only wraps; Base.handle() shakes hands
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def get_request(self):
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # else ~40 ms per exchange
        return sock, addr


# gunicorn's default limit_request_line (bytes of "METHOD path HTTP/1.1").
GUNICORN_LINE = 4094


class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 300

    def version_string(self):
        return self.server_version

    @property
    def app(self):
        return self.server.app

    def log_message(self, fmt, *args):
        if self.app.verbose:
            sys.stderr.write('[%s] %s\n' % (self.server.kind, fmt % args))

    def handle_expect_100(self):
        return True                              # Body.read() answers it lazily

    def handle(self):
        if self.server.tls and not self.tls_handshake():
            return
        super().handle()

    def tls_handshake(self):
        """In the connection's own thread with a short deadline: a client that stalls or rejects our
        certificate costs only its own connection."""
        try:
            self.connection.settimeout(10)
            self.connection.do_handshake()
        except OSError:                          # ssl.SSLError, timeouts, resets
            self.close_connection = True
            return False
        self.connection.settimeout(self.timeout)
        return True

    def line_too_large(self):
        """Specify's docker image runs gunicorn with its default limit_request_line: a longer
        request line never reaches Django (gunicorn's own page, then it hangs up)."""
        n = len(self.raw_requestline.rstrip(b'\r\n'))
        body = ('<html>\n  <head>\n    <title>Bad Request</title>\n  </head>\n  <body>\n'
                '    <h1><p>Bad Request</p></h1>\n    Request Line is too large (%d &gt; %d)\n'
                '  </body>\n</html>\n' % (n, GUNICORN_LINE)).encode()
        self.close_connection = True
        self.wfile.write(b'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n'
                         b'Content-Type: text/html\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        self.wfile.flush()

    def asset_down(self):
        return self.server.kind == 'asset' and self.app.faults.get('asset_down')

    def handle_one_request(self):
        if self.asset_down():                    # fault: the asset server hangs up at once ...
            self.close_connection = True
            return
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (OSError, ValueError):
            self.close_connection = True
            return
        if not self.raw_requestline or self.asset_down():   # ... also on kept-alive connections
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if self.server.kind == 'specify' and len(self.raw_requestline.rstrip(b'\r\n')) > GUNICORN_LINE:
            self.line_too_large()
            return
        if not self.parse_request():
            return
        try:
            self.process()
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        except Exception:                        # a stand-in bug: say so, and hang up
            import traceback
            traceback.print_exc()
            self.close_connection = True

    def process(self):
        u = urllib.parse.urlsplit(self.path)
        self.rpath, self.query = u.path, u.query
        self.q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))   # QueryDict: last value wins
        self.drop, self.responded = False, False
        control = self.server.kind == 'specify' and self.rpath.startswith('/__standin__/')
        limit = self.body_limit()
        try:
            self.body = Body(self, None if control else limit)
        except ValueError:
            self.body = Body.__new__(Body)
            self.body.done = True
            return self.reject(400)
        if control:
            return self.serve(control, limit)
        prof = PROFILES[self.app.faults.get('profile')]
        if prof is None:
            with self.app.serving(self.command, self.rpath):
                return self.serve(control, limit)
        turn = self.app.asset_turn if self.server.kind == 'asset' else self.app.specify_slots
        with turn, self.app.serving(self.command, self.rpath):   # the sleep holds a slot, not the data model's lock
            if self.server.kind == 'asset' and self.rpath == '/fileupload':
                # its asset_ms and its bytes at the rate, the stand-in's own time included
                self.body.pace(prof['asset_upload_bytes_s'], time.monotonic() + prof['asset_ms'] / 1000.0)
            elif self.server.kind == 'asset':
                time.sleep(prof['asset_ms'] / 1000.0)
            else:
                time.sleep(profile_ms(prof, self.command, self.rpath) / 1000.0)
            return self.serve(control, limit)

    def serve(self, control, limit):
        if not control:
            app = self.app
            app.count(self.command, self.rpath)
            latency = app.faults.get('latency_ms')
            if latency:
                time.sleep(latency / 1000.0)
            if limit is not None and self.body.length is not None and self.body.length > limit:
                return self.reject(413)         # nginx decides from Content-Length, before reading
            if app.faults.roll('error_rate', self.rpath):
                return self.reject(int(app.faults.get('error_status') or 503))
            meet, kind = app.faults.get('meet'), '%s %s' % (self.command, self.rpath)
            if meet and kind in meet and not app.meet(kind, meet):
                return self.reject(503)
            self.drop = self.command in ('POST', 'PUT', 'DELETE') and app.faults.roll('drop_after_commit_rate', self.rpath)
        try:
            self.control() if control else self.route()
        except (TooLarge, BadBody) as e:
            if not self.responded:
                return self.reject(413 if isinstance(e, TooLarge) else 400)
            self.close_connection = True
        self.finish_body()

    def body_limit(self):
        return None

    def send(self, status, body=b'', ctype=None, headers=(), close=False):
        if isinstance(body, str):
            body = body.encode('utf-8')
        self.responded = True
        if self.drop:                            # fault: the work is committed, the answer never comes
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(status)
        if ctype:
            self.send_header('Content-Type', ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        if close or self.close_connection or self.unread_body():
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        if self.command != 'HEAD' and body:
            self.wfile.write(body)

    def send_stream(self, status, ctype, headers, chunks, length=None):
        """A streamed answer: known length, or chunked transfer coding."""
        self.responded = True
        self.send_response(status)
        if ctype:
            self.send_header('Content-Type', ctype)
        for k, v in headers:
            self.send_header(k, v)
        if length is not None:
            self.send_header('Content-Length', str(length))
        elif self.command != 'HEAD':
            self.send_header('Transfer-Encoding', 'chunked')
        if self.close_connection or self.unread_body():
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        for block in chunks:
            if self.command == 'HEAD':
                continue
            self.wfile.write(block if length is not None else b'%x\r\n%s\r\n' % (len(block), block) if block else b'')
        if length is None and self.command != 'HEAD':
            self.wfile.write(b'0\r\n\r\n')

    def unread_body(self):
        """A body we will not drain (never sent yet, chunked, or big): announce the close."""
        b = getattr(self, 'body', None)
        return b is not None and not b.done and (b.expect or b.chunked or b.left > 64 * CHUNK)

    def reject(self, code):
        """An nginx error page, answered before the body is read; then a lingering close."""
        self.send(code, nginx_page(code), 'text/html', close=True)
        self.linger()

    def finish_body(self):
        """Keep the connection reusable: drain what the handler left unread, or close."""
        b = self.body
        if b.done or self.close_connection:
            if not b.done:
                self.linger()
            return
        if b.expect:                             # the client is still waiting to send it
            self.close_connection = True
            return
        try:
            while not b.done:
                b.read()
        except (TooLarge, ConnectionError, ValueError):
            pass
        if not b.done:
            self.close_connection = True
            self.linger()

    def linger(self):
        """Half-close and discard input briefly, so the client reads our answer, not a reset."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            end = time.time() + 2
            while time.time() < end and self.connection.recv(CHUNK):
                pass
        except OSError:
            pass

    def cookies(self):
        jar = {}
        for line in self.headers.get_all('Cookie') or []:
            for part in line.split(';'):
                k, _, v = part.partition('=') if '=' in part else ('', '', part)
                jar[k.strip()] = v.strip().strip('"')
        return jar


# ------------------------------------------------------------------------------ Specify (Django)

class Resp:
    def __init__(self, status=200, body=b'', ctype='text/html; charset=utf-8', cache=None, headers=()):
        self.status, self.body, self.ctype, self.cache = status, body, ctype, cache
        self.headers, self.stream = list(headers), None
        self.expires = cache is not None and 'no-store' in cache
        self.delay = 0


def jresp(obj, status=200, cache=None):
    return Resp(status, json.dumps(obj), 'application/json', cache)


class Ctx:
    """Per-request Django state: cookies, session, user, lazily the collection and agent."""

    def __init__(self, h):
        self.h, self.app = h, h.app
        self.cookies = h.cookies()
        self.session_accessed = self.session_changed = False
        self.session_key = self.cookies.get('sessionid')
        self._session = False
        self._coll = self._agent = False
        self.set_cookies = []
        self.csrf_new = None                     # a token this response must set
        self.ensure_csrf = False

    @property
    def session(self):
        if self._session is False:
            self.session_accessed = True
            self._session = self.app.session_get(self.session_key) if self.session_key else None
        return self._session

    @property
    def user(self):
        s = self.session
        return self.app.db.get('specifyuser', s['user']) if s else None

    def collection(self):
        if self._coll is False:
            db = self.app.db
            try:
                cid = int(self.cookies.get('collection', ''))
            except ValueError:
                user = self.user
                self._coll = self.app.user_collections(user)[0] if user else db.rows['collection'][min(db.rows['collection'])]
            else:
                self._coll = db.get('collection', cid)
            if self._coll is None:
                raise CollectionMissing()
        return self._coll

    def agent(self):
        if self._agent is False:
            self._agent = self.app.agent_for(self.user, self.collection()) if self.user else None
        return self._agent

    def login(self, user):
        """auth_login: a new session key, and Django rotates the CSRF token."""
        app = self.app
        _ = self.session                         # load the old one, if any
        app.sessions.pop(self.session_key, None)
        self.session_key = ''.join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32))
        self._session = app.sessions[self.session_key] = {'user': user['id'], 'created': time.time()}
        self.session_changed = True
        old = self.cookies.get('csrftoken')
        if old in app.csrf:
            app.csrf[old] = 'rotated'
        self.csrf_new = self.app_new_csrf()

    def logout(self):
        _ = self.session
        self.app.sessions.pop(self.session_key, None)
        self._session = None

    def app_new_csrf(self):
        tok = ''.join(secrets.choice(CSRF_CHARS) for _ in range(32))
        self.app.csrf[tok] = 'active'
        return tok


def csrf_unmask(tok):
    mask, tok = tok[:32], tok[32:]
    return ''.join(CSRF_CHARS[(CSRF_CHARS.index(x) - CSRF_CHARS.index(y)) % len(CSRF_CHARS)] for x, y in zip(tok, mask))


def csrf_format(tok):
    if len(tok) not in (32, 64):
        return 'has incorrect length'
    if any(c not in CSRF_CHARS for c in tok):
        return 'has invalid characters'
    return None


# The query builder (stored_queries/queryfieldspec.py, query_ops.py, execution.py QuerySort).
STRINGID_RE = re.compile(r'^([^\.]*)\.([^\.]*)\.(.*)$')
DATE_PART_RE = re.compile(r'(.*)((NumericDay)|(NumericMonth)|(NumericYear))$')
QUERY_OPS = ['like', 'equals', 'greaterthan', 'lessthan', 'greaterthanequals', 'lessthanequals', 'true', 'false',
             'dontcare', 'between', 'in', 'contains', 'empty', 'trueornull', 'falseornull', 'startswith',
             'age_range', 'age_period', 'endswith']
VALUE_FREE_OPS = {6, 7, 12, 13, 14}      # filter even with an empty startvalue
SORT_TYPES = [None, 'asc', 'desc']


ROUTES = [(re.compile('^' + p + '$'), name, skip) for p, name, skip in [
    (r'/context/login/', 'login', True),
    (r'/context/collection/', 'collection', False),
    (r'/context/user.json', 'user', False),
    (r'/context/domain.json', 'domain', False),
    (r'/context/system_info.json', 'system_info', True),
    (r'/context/app.resource', 'app_resource', False),
    (r'/context/attachment_settings.json', 'att_settings', False),
    (r'/attachment_gw/get_settings/', 'att_settings', False),
    (r'/attachment_gw/get_upload_params/', 'upload_params', False),
    (r'/attachment_gw/get_token/', 'get_token', False),
    (r'/attachment_gw/proxy/', 'proxy', False),
    (r'/api/specify/(?P<model>\w+)/(?P<id>\d+)/', 'api_resource', False),
    (r'/api/specify/(?P<model>\w+)/', 'api_collection', False),
    (r'/api/specify_rows/(?P<model>\w+)/', 'api_rows', False),
    # backend/bulk_copy (7.11.2 on): at /bulk_copy/, and again under specify/urls.py's r'^specify'
    (r'/bulk_copy/bulk/(?P<model>\w+)/', 'bulk', False),
    (r'/api/specifybulk/(?P<model>\w+)/', 'bulk', False),
    (r'/stored_query/ephemeral/', 'ephemeral', False)]]


class SpecifyHandler(Base):
    server_version = 'nginx'

    def body_limit(self):
        if self.command not in ('POST', 'PUT'):
            return SPECIFY_BODY_MAX
        m = self.app.faults.get('max_upload_bytes')
        return SPECIFY_BODY_MAX if m is None else min(m, SPECIFY_BODY_MAX)

    def resolve_route(self, path):
        for rx, name, skip in ROUTES:
            if name == 'bulk' and not self.app.faults.get('bulk'):   # a Specify before 7.11.2
                continue
            m = rx.match(path)
            if m:
                return getattr(self, 'v_' + name), m.groupdict(), skip
        return None

    def route(self):
        """Django's request path: URL resolution, CSRF, collection access, the view, middleware."""
        view = self.resolve_route(self.rpath)
        if view is None:
            if not self.rpath.endswith('/') and self.resolve_route(self.rpath + '/'):   # APPEND_SLASH
                loc = self.rpath + '/' + ('?' + self.query if self.query else '')
                return self.respond(None, Resp(301, headers=[('Location', loc)]))
            return self.respond(None, self.django_page(404))
        fn, kw, skip = view
        c = Ctx(self)
        if self.command not in ('GET', 'HEAD', 'OPTIONS', 'TRACE'):
            reason = self.csrf_check(c)
            if reason:
                return self.respond(c, Resp(403, csrf_page(reason)))
        stream = None
        with self.app.lock:
            try:
                if not skip and c.user is not None:              # PermissionsMiddleware
                    coll = c.collection()
                    if coll['id'] not in self.app.access(c.user):
                        raise Reply(403, json.dumps({'NoMatchingRuleException': [{
                            'collectionid': coll['id'], 'userid': c.user['id'],
                            'resource': '/system/sp7/collection', 'action': 'access'}]}), 'application/json')
                r = fn(c, **kw)
            except CollectionMissing:
                r = self.django_page(500)        # raised in middleware: Django's own 500 page
            except (TooLarge, ConnectionError):
                raise
            except Reply as e:
                r = Resp(e.status, e.body, e.ctype, headers=e.headers)
            except Exception as e:               # GeneralMiddleware.process_exception
                r = self.error500(e)
            stream = r.stream
        if r.delay:                              # a profile's time for work done row by row
            time.sleep(r.delay)
        self.respond(c, r, stream)

    def error500(self, e):
        if self.app.verbose:
            import traceback
            traceback.print_exc()
        args = e.args
        body = {'exception': type(e).__name__, 'message': str(args[0]) if args else 'None',
                'data': str(args[1]) if len(args) > 1 else 'None',
                'traceback': 'Traceback (most recent call last):\n  File "/opt/specify7/specifyweb/...", in %s\n%s: %s\n'
                             % (self.rpath, type(e).__name__, args[0] if args else '')}
        return Resp(500, json.dumps(body))

    def django_page(self, code):
        title, details = DJANGO_PAGES[code]
        return Resp(code, DJANGO_PAGE % (title, title, details))

    def csrf_check(self, c):
        """CsrfViewMiddleware.process_view (Django 4.2)."""
        origin = self.headers.get('Origin')
        host = self.headers.get('Host') or '127.0.0.1:%d' % self.server.server_address[1]
        if origin is not None:
            if origin != ('https://' if self.server.tls else 'http://') + host:
                return 'Origin checking failed - %s does not match any trusted origins.' % origin
        elif self.server.tls:
            reason = self.referer_check(host)
            if reason:
                return reason
        cookie = c.cookies.get('csrftoken')
        if cookie is None:
            return 'CSRF cookie not set.'
        bad = csrf_format(cookie)
        if bad:
            c.csrf_new = c.app_new_csrf()
            return 'CSRF cookie %s.' % bad
        token = self.headers.get('X-CSRFToken')
        if token is None and self.command == 'POST' and \
                self.headers.get('Content-Type', '').startswith('application/x-www-form-urlencoded'):
            body = self.body.read_all()
            self.form_body = body
            token = urllib.parse.parse_qs(body.decode('latin-1')).get('csrfmiddlewaretoken', [None])[-1]
            source = 'POST'
        else:
            source = "the 'X-Csrftoken' HTTP header"
        if token is None:
            return 'CSRF token missing.'
        bad = csrf_format(token)
        if bad:
            return 'CSRF token from %s %s.' % (source, bad)
        secret = csrf_unmask(cookie) if len(cookie) == 64 else cookie
        given = csrf_unmask(token) if len(token) == 64 else token
        # Django compares the token with the cookie and keeps no copy (CSRF_USE_SESSIONS is off in
        # Specify): a well-formed cookie the client made itself will do.  After a login the header
        # must follow the rotated cookie (sample 05).  The fault "csrf_issued_only" (a test switch,
        # beyond Django) also wants a cookie this server issued and did not rotate.
        if not hmac.compare_digest(given, secret) or \
                (self.app.faults.get('csrf_issued_only') and self.app.csrf.get(cookie) != 'active'):
            return 'CSRF token from %s incorrect.' % source
        return None

    def referer_check(self, host):
        """CsrfViewMiddleware._check_referer: on HTTPS an unsafe request without Origin needs a
        Referer on this very host (CSRF_TRUSTED_ORIGINS' 'https://*' matches nothing)."""
        referer = self.headers.get('Referer')
        if referer is None:
            return 'Referer checking failed - no Referer.'
        try:
            u = urllib.parse.urlparse(referer)
        except ValueError:
            u = None
        if u is None or '' in (u.scheme, u.netloc):
            return 'Referer checking failed - Referer is malformed.'
        if u.scheme != 'https':
            return 'Referer checking failed - Referer is insecure while host is secure.'
        if u.netloc != host.lower():             # is_same_domain() lower-cases only the host
            return 'Referer checking failed - %s does not match any trusted origins.' % u.geturl()
        return None

    def respond(self, c, r, stream=None):
        """Response middleware: CSRF and session cookies, Vary, gzip; then send."""
        vary, cookies = [], []
        if c is not None:
            if c.ensure_csrf and c.csrf_new is None:
                cur = c.cookies.get('csrftoken')        # get_token(): the request's secret, if well-formed
                keep = cur and not csrf_format(cur) and \
                    (not self.app.faults.get('csrf_issued_only') or self.app.csrf.get(cur) == 'active')
                c.csrf_new = (csrf_unmask(cur) if len(cur) == 64 else cur) if keep else c.app_new_csrf()
            cookies += c.set_cookies
            if c.csrf_new:
                domain = self.app.faults.get('csrf_cookie_domain')      # CSRF_COOKIE_DOMAIN
                cookies.append('csrftoken=%s; %sexpires=%s; Max-Age=31449600; Path=/; SameSite=Lax'
                               % (c.csrf_new, 'Domain=%s; ' % domain if domain else '',
                                  http_date(time.time() + 31449600)))
                vary.append('Cookie')
        vary.append('Accept-Language')
        if c is not None and c.session_accessed:
            if 'sessionid' in c.cookies and c._session is None and not c.session_changed:
                cookies.append('sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax')
            elif c.session_changed:
                cookies.append('sessionid=%s; HttpOnly; Path=/; SameSite=Lax' % c.session_key)
            if 'Cookie' not in vary:
                vary.append('Cookie')
        body = r.body.encode('utf-8') if isinstance(r.body, str) else r.body
        headers = list(r.headers)
        if stream is None and len(body) >= 200:    # GZipMiddleware
            vary.append('Accept-Encoding')
            if re.search(r'\bgzip\b', self.headers.get('Accept-Encoding', '')):
                z = gzip.compress(body)
                if len(z) < len(body):
                    body = z
                    headers.append(('Content-Encoding', 'gzip'))
        headers.append(('Vary', ', '.join(vary)))
        headers.append(('Content-Language', 'en-us'))
        if r.cache:
            headers.append(('Cache-Control', r.cache))
        if r.expires:
            headers.append(('Expires', http_date()))
        headers += [('Set-Cookie', ck) for ck in cookies]
        if stream is not None:
            try:
                self.send_stream(r.status, r.ctype, headers, stream)
            finally:
                close = getattr(stream, 'close', None)
                close and close()
        else:
            self.send(r.status, body, r.ctype, headers)

    # -- view helpers (decorators)
    def login_required(self, c):
        if c.user is None:                       # login_maybe_required: 403, empty body
            raise Reply(403)

    def allow(self, *methods):
        if self.command not in methods:
            raise Reply(405, headers=[('Allow', ', '.join(methods))])

    def raw_body(self):
        raw = getattr(self, 'form_body', None)   # already read by the CSRF check
        return raw if raw is not None else self.body.read_all()

    def json_body(self):
        return json.loads(self.raw_body())

    # -- /context/
    def v_login(self, c):
        self.allow('GET', 'HEAD', 'PUT')
        c.ensure_csrf = True                     # ensure_csrf_cookie: every answer sets csrftoken
        if self.command == 'PUT':
            data = self.json_body()
            if any(data[k] is None for k in ('username', 'password', 'collection')):
                c.logout()
                return Resp(204, cache=NEVER_CACHE)
            user = self.app.user_by_name(data['username'])
            if user is None or user['password'] != data['password']:
                return Resp(403, cache=NEVER_CACHE)
            c.login(user)                        # the user is logged in even if the collection is bad
            coll = self.app.db.get('collection', dj_int(data['collection']))
            if coll is None:
                return Resp(400, 'collection %s does not exist' % data['collection'], cache=NEVER_CACHE)
            r = Resp(204, cache=NEVER_CACHE)
            c.set_cookies.append(self.collection_cookie(coll['id']))
            return r
        colls = {row['collectionname']: i for i, row in sorted(self.app.db.rows['collection'].items())}
        return jresp({'collections': colls, 'username': None, 'password': None, 'collection': None}, cache=NEVER_CACHE)

    def collection_cookie(self, cid):
        return 'collection=%d; expires=%s; Max-Age=31536000; Path=/' % (cid, http_date(time.time() + 31536000))

    def v_collection(self, c):
        self.login_required(c)
        self.allow('GET', 'HEAD', 'POST')
        current = c.cookies.get('collection')
        available = self.app.user_collections(c.user)
        if self.command == 'POST':
            try:
                cid = int(self.raw_body())
            except ValueError:
                return Resp(400, 'bad collection id', 'text/plain', NEVER_CACHE)
            if self.app.db.get('collection', cid) is None:
                return Resp(400, 'collection does not exist', 'text/plain', NEVER_CACHE)
            if cid not in [x['id'] for x in available]:
                return Resp(400, 'access denied', cache=NEVER_CACHE)
            c.set_cookies.append(self.collection_cookie(cid))
            return Resp(200, 'ok', cache=NEVER_CACHE)
        return jresp({'available': [self.app.to_data('collection', x) for x in available],
                      'current': current and int(current)}, cache=NEVER_CACHE)

    def v_user(self, c):
        self.login_required(c)
        self.allow('GET', 'HEAD')
        app = self.app
        data = app.to_data('specifyuser', c.user)
        data['isauthenticated'] = True
        data['available_collections'] = [app.to_data('collection', x) for x in app.user_collections(c.user)]
        agent = c.agent()
        data['agent'] = data['current_agent'] = app.to_data('agent', agent) if agent else None
        return jresp(data, cache='max-age=0, private, no-cache, no-store, must-revalidate')

    def v_domain(self, c):
        self.login_required(c)
        self.allow('GET', 'HEAD')
        db, coll = self.app.db, c.collection()
        disc = db.get('discipline', coll['discipline'])
        div = db.get('division', disc['division'])
        cots = [t for t in db.rows['collectionobjecttype'].values() if t['collection'] == coll['id']]
        return jresp({
            'collection': coll['id'], 'discipline': disc['id'], 'division': div['id'],
            'institution': div['institution'], 'embeddedCollectingEvent': coll['isembeddedcollectingevent'],
            'embeddedPaleoContext': disc['ispaleocontextembedded'], 'paleoContextChildTable': disc['paleocontextchildtable'],
            'catalogNumFormatName': coll['catalognumformatname'],
            'defaultCollectionObjectType': uri('collectionobjecttype', coll['collectionobjecttype'])
            if coll['collectionobjecttype'] is not None else None,
            'collectionObjectTypeCatalogNumberFormats': {uri('collectionobjecttype', t['id']): t['catalognumberformatname']
                                                         for t in sorted(cots, key=lambda t: t['id'])}}, cache=NEVER_CACHE)

    def v_system_info(self, c):
        self.allow('GET', 'HEAD')
        db, sysinfo = self.app.db, self.app.fx.get('system', {})
        try:
            coll = c.collection()
        except CollectionMissing:
            coll = None
        disc = db.get('discipline', coll['discipline']) if coll else None
        inst = db.rows['institution'][min(db.rows['institution'])]
        info = dict(version=sysinfo.get('version', '7.12.0.7'), specify6_version=sysinfo.get('specify6_version'),
                    setup_complete=True, database_version=sysinfo.get('database_version'),
                    schema_version=sysinfo.get('schema_version'), stats_url=sysinfo.get('stats_url'),
                    stats_2_url=sysinfo.get('stats_2_url'), database=sysinfo.get('database', 'specify'),
                    institution=inst['name'], institution_guid=inst['guid'],
                    discipline=disc['name'] if disc else None, collection=coll['collectionname'] if coll else None,
                    collection_guid=coll['guid'] if coll else None, isa_number=coll['isanumber'] if coll else None,
                    discipline_type=disc['type'] if disc else None, geography_is_global=inst['issinglegeographytree'])
        return jresp(info, cache='max-age=86400, public')

    def v_app_resource(self, c):
        self.login_required(c)
        self.allow('GET', 'HEAD')
        res = self.app.fx.get('app_resources', {}).get(self.q.get('name'))
        if 'name' not in self.q or res is None:
            if 'name' in self.q and 'quiet' in self.q and self.q['quiet'].lower() != 'false':
                return Resp(204, cache='max-age=86400, private')
            return self.django_page(404)
        with open(os.path.join(self.app.fixture_dir, res['file']), encoding='utf-8') as f:
            text = f.read()
        if res.get('append'):                    # the fixture's own formats, inside the root element
            cut = text.rindex('</')
            text = text[:cut] + ''.join('  %s\n' % x for x in res['append']) + '\n' + text[cut:]
        return Resp(200, text, res.get('mimetype', 'text/xml'), 'max-age=86400, private',
                    headers=[('X-Record-ID', str(res.get('id', 1)))])

    # -- /attachment_gw/
    def v_att_settings(self, c):
        self.login_required(c)
        self.allow('GET', 'HEAD')
        app = self.app
        if app.server_urls is None:
            return Resp(200, '{}', 'application/json', 'max-age=86400, private')
        data = {'collection': app.first_collection_name(), 'token_required_for_get': False}
        data.update(app.server_urls)
        return jresp(data, cache='max-age=86400, private')

    def v_upload_params(self, c):
        self.login_required(c)
        self.allow('POST', 'HEAD')
        app = self.app
        out = []
        for name in self.json_body()['filenames']:
            loc = str(uuid.uuid4()) + os.path.splitext(name)[1]
            out.append({'attachmentLocation': loc, 'token': app.token(app.specify_timestamp(), loc)})
        return Resp(200, json.dumps(out), 'application/json')

    def v_get_token(self, c):
        self.login_required(c)
        self.allow('GET', 'HEAD')
        if 'filename' not in self.q:
            raise exc('MultiValueDictKeyError', 'filename')
        app = self.app
        tok = app.token(app.specify_timestamp(), self.q['filename']) if app.server_urls is not None else ''
        return Resp(200, tok, 'text/plain')

    def v_proxy(self, c):
        """Streams `read?<query>`; like Specify, always 200 with the asset server's Content-Type."""
        self.login_required(c)
        self.allow('GET', 'HEAD')
        if self.app.server_urls is None:
            return Resp(400, 'error', 'application/json')
        u = urllib.parse.urlsplit(self.app.server_urls['read'])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        try:
            conn.request('GET', u.path + '?' + self.query)
            up = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise exc('ConnectionError', str(e))
        if up.getheader('Content-Type') is None:
            conn.close()
            raise exc('KeyError', 'content-type')

        class Stream:
            def __iter__(self):
                return iter(lambda: up.read(512 * 1024), b'')

            def close(self):
                conn.close()
        r = Resp(200, b'', up.getheader('Content-Type'))
        r.stream = Stream()
        return r

    # -- /api/specify/ (api/dispatch.py under views.api_view)
    def api(self, c, fn):
        self.login_required(c)
        try:
            r = fn()
        except Reply as e:                       # StaleObject 409, MissingVersion 400, Http404 404
            r = Resp(e.status, e.body, e.ctype, headers=e.headers)
        r.cache = API_CACHE
        return r

    def checker(self, c):
        return lambda: self.app.need_agent(c)

    def v_api_collection(self, c, model):
        return self.api(c, lambda: self.api_collection(c, model))

    def api_collection(self, c, model):
        app = self.app
        if self.command == 'GET':
            err, control = form_errors(self.q)
            if err:
                return jresp(err, 400)
            T = app.db.table(model)
            if T is None:                        # a real table the stand-in does not model: empty
                rows = []
            else:
                rows = app.query(c, T, self.q, control)
                if control['orderby']:
                    rows = sort_rows(app.db, T, rows, control['orderby'].split(','))
            total, lim, off = len(rows), control['limit'], control['offset']
            if lim < 0 or off < 0:
                raise exc('AssertionError', 'Negative indexing is not supported.')
            page = rows[off:] if lim == 0 else rows[off:off + lim]
            objs = [app.to_data(T.name, r, self.checker(c)) for r in page]
            return jresp({'objects': objs, 'meta': {'limit': lim, 'offset': off, 'total_count': total}})
        if self.command == 'POST':
            return jresp(self.post_resource(c, model, self.json_body()), 201)
        raise Reply(405, headers=[('Allow', 'GET, POST')])

    def post_resource(self, c, model, data):
        """crud.post_resource, one transaction, and the created object as the reply shows it."""
        app = self.app
        with Txn(app):
            row = app.create(c, model, data)
        T = app.db.table(model)
        if row['id'] is None:                    # join row without attachment: save aborted, nothing stored
            out = {k: v for k, v in app.to_data(T.name, dict(row, id=0)).items()}
            out.update(id=None, resource_uri=uri(T.name))
            return out
        return app.to_data(T.name, app.db.get(T.name, row['id']), self.checker(c))

    def v_bulk(self, c, model):
        return self.api(c, lambda: self.bulk(c, model))

    def bulk(self, c, model):
        """bulk_copy.collection_dispatch_bulk: post_resource per object of the list, each in its own
        transaction and none around them, so the objects before one that fails stay created."""
        if self.command != 'POST':
            raise Reply(405, headers=[('Allow', 'POST')])
        objs = self.json_body()
        fail_at = self.app.faults.take_below('bulk_fail_at', len(objs) if isinstance(objs, list) else 0)
        out = []
        for i, data in enumerate(objs):
            if i == fail_at:
                raise exc('IntegrityError', '(1062, "Duplicate entry for key \'PRIMARY\'")')
            out.append(self.post_resource(c, model, data))
        r = jresp(out, 201)
        prof = PROFILES[self.app.faults.get('profile')]
        if prof:
            r.delay = prof['bulk_row_ms'] * len(out) / 1000.0
        return r

    def v_api_resource(self, c, model, id):
        return self.api(c, lambda: self.api_resource(c, model, int(id)))

    def api_resource(self, c, model, id):
        app = self.app
        version = self.q['version'] if 'version' in self.q else self.headers.get('If-Match')
        if self.command == 'GET':
            T, row = app.db.get_or_404(model, id)
            return jresp(app.to_data(T.name, row, self.checker(c)))
        if self.command == 'PUT':
            data = self.json_body()
            try:
                version = data['version']
            except KeyError:
                pass
            T = app.db.table(model)
            if T and app.db.get(T.name, id) and app.faults.take('conflict_next_put'):
                # fault: someone else saved the record just now
                app.db.update(T.name, id, {'version': app.db.get(T.name, id)['version'] + 1,
                                           'timestampmodified': now_iso()})
            with Txn(app):
                row = app.update(c, model, id, version, data)
            return jresp(app.to_data(T.name, row, self.checker(c)))
        if self.command == 'DELETE':
            with Txn(app):
                app.delete(c, model, id, version)
            return Resp(204)
        raise Reply(405, headers=[('Allow', 'GET, PUT, DELETE')])

    def v_api_rows(self, c, model):
        """table_rows.views.rows: arrays of the requested fields (§2.2)."""
        self.login_required(c)
        self.allow('GET', 'HEAD')
        app = self.app
        app.need_agent(c)                        # enforce(read) comes first
        err, control = form_errors(self.q, rows_form=True)
        if err:
            return jresp(err, 400)
        try:
            T = app.db.table(model)
        except Reply:                            # Http404 is not caught here: Django's own page
            return self.django_page(404)
        if T is None:                            # a real table the stand-in does not model: empty
            return Resp(200, '[]', 'application/json')
        try:
            rows = app.query(c, T, self.q, control)
        except Reply as e:                       # rows() does not catch FilterError: a 500
            raise exc('FilterError', e.body)
        fields = control['fields'].split(',')
        paths = [resolve(app.db, T, f, allow_lookup=False) for f in fields]
        out = []
        for r in rows:
            combos = [[]]
            for p in paths:                      # to-many fields fan out, as the SQL join does
                combos = [cmb + [v] for cmb in combos for v in path_values(app.db, r, p)]
            out += [(r, cmb) for cmb in combos]

        def key(v, p):
            return (v is not None, collate(v) if v is not None and p.ftype in ('char', 'text') else v)
        if control['orderby']:                   # order_by(orderby) replaces order_by(*fields)
            try:                                 # ... and its FieldError is not caught here: 500
                p = resolve(app.db, T, control['orderby'].lstrip('-'), allow_lookup=False)
            except Reply as e:
                raise exc('OrderByError', e.body)
            out.sort(key=lambda x: key(path_values(app.db, x[0], p)[0], p), reverse=control['orderby'].startswith('-'))
        else:
            for i in reversed(range(len(paths))):
                out.sort(key=lambda x: key(x[1][i], paths[i]))
        out = [cmb for _, cmb in out]
        if control['distinct']:
            seen, uniq = set(), []
            for x in out:
                k = json.dumps(x)
                if k not in seen:
                    seen.add(k)
                    uniq.append(x)
            out = uniq
        lim, off = control['limit'], control['offset']
        if lim < 0 or off < 0:
            raise exc('AssertionError', 'Negative indexing is not supported.')
        out = out[off:] if lim == 0 else out[off:off + lim]
        return Resp(200, json.dumps(out), 'application/json')

    # -- /stored_query/ephemeral/ (the query builder for plain fields along join paths, §2.5)
    def v_ephemeral(self, c):
        """stored_queries.views.ephemeral: get_query() (the body, the collection, then the
        /querybuilder/query execute permission), then run_ephemeral_query() → execute() → build_query()."""
        if self.command != 'POST':
            raise Reply(405, headers=[('Allow', 'POST')])
        self.login_required(c)
        app, db = self.app, self.app.db
        try:
            q = json.loads(self.raw_body())
        except ValueError:                       # get_query() returns an HttpResponseBadRequest, which
            raise exc('ValueError', 'not enough values to unpack (expected 2, got 1)')   # ephemeral() unpacks
        coll = db.get('collection', dj_int(q['collectionid'])) if 'collectionid' in q else c.collection()
        if coll is None:
            raise exc('DoesNotExist', 'Collection matching query does not exist.')
        if not app.permitted(c.user, coll['id'], '/querybuilder/query', 'execute'):
            raise Reply(403, json.dumps({'NoMatchingRuleException': [{
                'collectionid': coll['id'], 'userid': c.user['id'],
                'resource': '/querybuilder/query', 'action': 'execute'}]}), 'application/json')
        # run_ephemeral_query reads these in this order (a missing required key: KeyError → 500)
        lim, off, recordsetid = q.get('limit', 20), q.get('offset', 0), q.get('recordsetid')
        distinct, series = q['selectdistinct'], q.get('smushed')
        tableid, count_only = q['contexttableid'], q['countonly']
        by_id = {t.tableid: t for t in db.tables.values()}
        specs = [self.query_field_spec(f, by_id) for f in sorted(q['fields'], key=lambda f: f['position'])]
        # build_query
        T = by_id.get(tableid)
        if T is None:                            # models_by_tableid[tableid]
            raise exc('KeyError', tableid)
        if distinct or series or recordsetid is not None:
            raise exc('NotImplementedError', 'stand-in: selectdistinct, smushed and recordsetid are not emulated')
        for s in specs:                          # tables_in_path (before the table read checks)
            if s['root'] is not T:
                raise exc('NotImplementedError', 'stand-in: only paths from the base table: %s' % s['stringid'])
            node = T
            for step, table in s['path']:
                if step is None:                 # Table.get_field() (not strict) found no such name
                    raise exc('AttributeError', "'NoneType' object has no attribute 'is_relationship'")
                name, kind, target, _ = step
                if kind == 'field':
                    raise exc('NotImplementedError', 'stand-in: %s.%s is not a relationship: %s'
                              % (node.model, name, s['stringid']))
                if target != table.name:         # Specify would go on with the wrong table: refused here
                    raise exc('NotImplementedError', 'stand-in: table id %d (%s) is not the target of %s.%s (%s): %s'
                              % (table.tableid, table.model, node.model, name, db.tables[target].model
                                 if target in db.tables else target, s['stringid']))
                node = table
        base = app.filter_by_collection(T, sorted(db.rows[T.name].values(), key=db.order_key(T.name)), coll)
        joins, preds, display, order = {}, {}, [], []
        for s in specs:
            sort = SORT_TYPES[s['f'].get('sorttype')]     # QuerySort.by_id: None/out of range → 500
            op = s['f'].get('operstart')
            QUERY_OPS[op]                                   # QueryField.add_to_query: likewise
            key = ()
            for step, _ in s['path']:            # outer joins, one per distinct path (the join cache)
                key += (step[0],)
                joins.setdefault(key, (key[:-1],) + step)
            node, fname = s['table'], s['fname'].lower()
            if fname == node.name + 'id':
                col, ftype = 'id', 'int'
            elif fname in node.fields:
                col, ftype = fname, node.fields[fname][0]
            elif self.query_relationship(node, fname) is not None:
                raise exc('NotImplementedError', 'stand-in: formatted relationship fields: %s' % s['stringid'])
            else:                                # Specify would take it for a tree rank
                raise exc('NotImplementedError', 'stand-in: %s has no field %r' % (node.model, s['fname']))
            fmt = coll['catalognumformatname'] if (node.name, col) == ('collectionobject', 'catalognumber') else None
            value, negate = s['f'].get('startvalue'), s['f'].get('isnot')
            if not (op == 8 or (value == '' and op not in VALUE_FREE_OPS and not negate)):
                if value is None and op not in VALUE_FREE_OPS:
                    raise exc('NotImplementedError', 'stand-in: a filter without startvalue: %s' % s['stringid'])
                # predicates on the same field are ORed, those on different fields ANDed (implicit_or)
                preds.setdefault((key, col), []).append(
                    lambda cmb, f=s['f'], key=key, col=col, ftype=ftype, fmt=fmt:
                        self.query_op(f, None if cmb[key] is None else cmb[key].get(col), ftype, fmt))
            if s['f'].get('isdisplay'):
                display.append((key, col, fmt))
            if sort is not None:
                order.append((key, col, ftype, sort == 'desc'))
        combos = [{(): r} for r in base]          # one row per base record and joined child
        for key, (parent, name, kind, target, fk) in joins.items():
            kids = {}
            if kind != 'fk':
                for r in sorted(db.rows[target].values(), key=lambda r: r['id']):
                    kids.setdefault(r.get(fk), []).append(r)
            out = []
            for cmb in combos:
                p = cmb[parent]
                if p is None:
                    found = [None]
                elif kind == 'fk':
                    found = [db.get(target, p[name]) if p.get(name) is not None else None]
                else:
                    found = kids.get(p['id']) or [None]
                out += [{**cmb, key: k} for k in found]
            combos = out
        combos = [cmb for cmb in combos if all(any(p(cmb) for p in group) for group in preds.values())]
        for key, col, ftype, desc in reversed(order):   # ORDER BY: NULLs first ascending, as MySQL
            def sort_key(cmb, key=key, col=col, text=ftype in ('char', 'text')):
                v = None if cmb[key] is None else cmb[key].get(col)
                return (v is not None, collate(v) if text and v is not None else v)
            combos.sort(key=sort_key, reverse=desc)
        if count_only:
            return jresp({'count': len(combos)}, cache=NEVER_CACHE)
        off, lim = off or 0, lim or 0
        combos = combos[off:] if lim == 0 else combos[off:off + lim]

        def show(cmb, key, col, fmt):            # display formatting: CNN strips leading zeros
            v = None if cmb[key] is None else cmb[key].get(col)
            return str(int(v)) if fmt == 'CatalogNumberNumeric' and v and v.isdigit() else v
        return jresp({'results': [[cmb[()]['id']] + [show(cmb, *d) for d in display] for cmb in combos]},
                     cache=NEVER_CACHE)

    def query_field_spec(self, f, by_id):
        """QueryFieldSpec.from_stringid (7.12): '<tablelist>.<table>.<field>', the table list being the
        base table id, then per join '<tableId>-<relationship>' or '<tableId>' (relationship named as
        the table); names are looked up case-insensitively, the table by its id."""
        stringid = f.get('stringid')
        path_str, _, fname = STRINGID_RE.match(stringid).groups()
        path = path_str.split(',')

        def table(tid):
            t = by_id.get(int(tid))
            if t is None:
                raise exc('NotImplementedError', 'stand-in: no table with id %s in the fixture schema: %s'
                          % (tid, stringid))
            return t
        root = table(path.pop(0))
        if f.get('isrelfld'):
            if not path:
                raise exc('IndexError', 'pop from an empty deque')
            raise exc('NotImplementedError', 'stand-in: formatted/aggregated relationships (isrelfld): %s' % stringid)
        node, steps = root, []
        for elem in path:
            try:
                tid, name = elem.split('-')
            except ValueError:
                tid, name = elem, None
            t = table(tid)
            steps.append((self.query_relationship(node, name or t.name), t))
            node = t
        if DATE_PART_RE.match(fname):
            raise exc('NotImplementedError', 'stand-in: date parts: %s' % stringid)
        return {'f': f, 'stringid': stringid, 'root': root, 'path': steps, 'table': node, 'fname': fname}

    @staticmethod
    def query_relationship(T, name):
        """Table.get_field(name) as a join step: (name, 'fk' | 'many' | 'one' | 'field', target, fk) or None."""
        n = name.lower()
        if n in T.fks:
            return (n, 'fk', T.fks[n][0], None)
        if n in T.tomany:
            return (n, 'many', T.tomany[n][1], T.tomany[n][2])
        for r in T.rev1:
            if r[0] == n:
                return (n, 'one', r[1], r[2])
        if n in T.fields or n == T.name + 'id':
            return (n, 'field', None, None)
        return None

    @staticmethod
    def query_op(f, v, ftype, fmt):
        op, neg, start = f.get('operstart', 8), f.get('isnot', False), f.get('startvalue', '')

        def canon(x):                            # uiformatter.canonicalize(parse(x)), else literal
            x = x.strip()
            return x.zfill(9) if fmt == 'CatalogNumberNumeric' and re.fullmatch(r'[0-9]{0,9}', x) else x

        def eq(a, b):
            return a is not None and (collate(a) == collate(b) if ftype in ('char', 'text') else str(a) == str(b))
        if op == 8:
            return True
        if op == 10:
            vals = []
            for x in start.split(','):
                m = re.fullmatch(r'\s*(\d+)\s*-\s*(\d+)\s*', x) if fmt == 'CatalogNumberNumeric' else None
                if m and v is not None and v.isdigit() and int(m.group(1)) <= int(v) <= int(m.group(2)):
                    return not neg
                vals.append(canon(x))
            hit = any(eq(v, x) for x in vals)
        elif op == 1:
            hit = eq(v, canon(start))
        elif op == 0:
            rx = ''.join('.*' if ch == '%' else '.' if ch == '_' else re.escape(ch) for ch in fold(start))
            hit = v is not None and re.fullmatch(rx, fold(v), re.S) is not None
        elif op in (11, 15, 18):
            s, t = fold(start), fold(v) if v is not None else None
            hit = t is not None and (s in t if op == 11 else t.startswith(s) if op == 15 else t.endswith(s))
        elif op == 12:
            hit = v in (None, '')
        else:
            raise exc('NotImplementedError', 'stand-in: query operator %s' % op)
        if neg and v is None and op not in (1, 10, 11):
            return False                         # NOT (NULL ...) is NULL; only these negate null-safely
        return hit != bool(neg)

    # -- control API (not part of Specify)
    def control(self):
        app = self.app
        parts = self.rpath.strip('/').split('/')[1:]
        try:
            if parts == ['faults'] and self.command == 'GET':
                with app.faults.lock:
                    return self.send(200, json.dumps(app.faults.v), 'application/json')
            if parts == ['faults'] and self.command == 'POST':
                data = json.loads(self.body.read_all() or b'{}')
                unknown = set(data) - set(FAULT_DEFAULTS) - {'expire_sessions'}
                if unknown:
                    return self.send(400, 'unknown fault keys: %s' % ', '.join(sorted(unknown)), 'text/plain')
                if data.get('profile', 'none') not in PROFILES:
                    return self.send(400, 'unknown profile: %s' % data['profile'], 'text/plain')
                if data.pop('expire_sessions', False):
                    with app.lock:
                        app.sessions.clear()
                with app.meet_cond:
                    app.met.clear()
                with app.faults.lock:
                    app.faults.v.update(data)
                    return self.send(200, json.dumps(app.faults.v), 'application/json')
            if parts == ['faults', 'reset'] and self.command == 'POST':
                self.body.read_all()
                with app.meet_cond:
                    app.met.clear()
                with app.faults.lock:
                    app.faults.v = dict(app.faults.defaults)
                    return self.send(200, json.dumps(app.faults.v), 'application/json')
            if parts == ['state'] and self.command == 'GET':
                return self.send(200, json.dumps(self.state()), 'application/json')
            if parts == ['records'] and self.command == 'POST':
                data = json.loads(self.body.read_all())
                with app.lock:
                    return self.send(201, json.dumps({'id': self.seed_record(data['table'], data.get('fields', {}))}),
                                     'application/json')
            if len(parts) == 3 and parts[0] == 'records' and self.command == 'DELETE':
                with app.lock, Txn(app):
                    app.delete(None, parts[1], int(parts[2]))
                return self.send(204)
        except Reply as e:
            return self.send(e.status, e.body, e.ctype)
        except (KeyError, ValueError, TypeError) as e:
            return self.send(400, '%s: %s' % (type(e).__name__, e), 'text/plain')
        return self.send(404, 'no such control endpoint', 'text/plain')

    def seed_record(self, table, fields):
        app, db = self.app, self.app.db
        T = db.tables.get(table)
        if T is None:
            raise ValueError('table %r is not in the fixture schema' % table)
        vals = {}
        for k, v in fields.items():
            if k in T.fks and isinstance(v, str):
                m = URI_RE.match(v)
                v = int(m.group(3)) if m and m.group(3) else v
            if k not in T.fields and k not in T.fks and k != 'id':
                raise ValueError('%s has no field %r' % (table, k))
            vals[k] = v
        row = db.blank(table, vals)
        if 'guid' in T.fields and table != 'taxon' and not row.get('guid'):
            row['guid'] = str(uuid.uuid4())
        if table == 'attachment' and row.get('tableid') is None:
            row['tableid'] = T.tableid
        for f in ('collectionobject',):
            if 'collectionmemberid' in T.fields and row.get('collectionmemberid') is None and row.get(f):
                row['collectionmemberid'] = db.get(f, row[f])['collectionmemberid']
        if table == 'collectionobject' and row.get('collectionmemberid') is None:
            row['collectionmemberid'] = row.get('collection')
        for f in T.fields:
            row[f] = prep_save(T, f, row[f])
        db_check(T, row)
        return db.insert(table, row)['id']

    def state(self):
        app, db = self.app, self.app.db
        atts = []
        with app.lock:
            linked = set()
            for t, T in db.tables.items():
                base = t[:-len('attachment')]
                if not (t.endswith('attachment') and 'attachment' in T.fks and base in T.fks):
                    continue
                for j in db.rows[t].values():
                    a = db.get('attachment', j['attachment']) or {}
                    linked.add(j['attachment'])
                    atts.append(dict(join_table=t, join_id=j['id'], record_table=base, record_id=j[base],
                                     ordinal=j['ordinal'], collectionmemberid=j.get('collectionmemberid'),
                                     attachment_id=j['attachment'], **self.att_fields(a)))
            for a in db.rows['attachment'].values():
                if a['id'] not in linked:
                    atts.append(dict(join_table=None, join_id=None, record_table=None, record_id=None, ordinal=None,
                                     collectionmemberid=None, attachment_id=a['id'], **self.att_fields(a)))
            sessions = sum(1 for k in list(app.sessions) if app.session_get(k))
        with app.files_lock:
            files = {k: dict(v) for k, v in app.files.items()}
        with app.stats_lock:
            reqs, busiest = dict(app.requests), dict(app.busiest)
        return {'attachments': atts, 'files': files, 'requests': reqs, 'busiest': busiest, 'sessions': sessions,
                'asset_time': app.asset_now(), 'specify_time_delta': app.time_delta}

    @staticmethod
    def att_fields(a):
        return {k: a.get(k) for k in ('attachmentlocation', 'origfilename', 'title', 'mimetype', 'ispublic',
                                      'tableid', 'scopetype', 'scopeid', 'version', 'dateimaged',
                                      'filecreateddate', 'capturedevice', 'license', 'copyrightholder', 'credit', 'remarks')}


class Txn:
    """@transaction.atomic over the in-memory rows (files on the asset server are not rolled back)."""

    def __init__(self, app):
        self.db = app.db

    def __enter__(self):
        self.db.begin()

    def __exit__(self, et, ev, tb):
        if et is None:
            self.db.commit()
        else:
            self.db.rollback()
        return False


# ------------------------------------------------------------------------------ Web Asset Server (Bottle)

def disposition_params(value):
    """Parameters of a Content-Disposition header (quoted strings, RFC 5987 filename*)."""
    params = {}
    for m in re.finditer(r';\s*([\w*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', ';' + value.split(';', 1)[-1]):
        k, v = m.group(1).lower(), m.group(2).strip()
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        if k.endswith('*'):
            k, v = k[:-1], urllib.parse.unquote(v.split("'", 2)[-1])
        params[k] = v
    return params


class AssetHandler(Base):
    server_version = 'PasteWSGIServer/0.5 Python/3.11.2'

    def body_limit(self):
        return self.app.faults.get('max_upload_bytes') if self.rpath == '/fileupload' else None

    def send(self, status, body=b'', ctype=None, headers=(), close=False):
        # every asset answer carries the server clock, so clients can stay in sync
        super().send(status, body, ctype, list(headers) + [('X-Timestamp', str(self.app.asset_now()))], close)

    def bottle_error(self, code, text, headers=()):
        def esc(v):                              # bottle.html_escape
            return (v.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
                    .replace('"', '&quot;').replace("'", '&#039;'))
        url = 'http://%s%s' % (self.headers.get('Host', '127.0.0.1'), self.path)
        page = BOTTLE_PAGE % {'status': esc('%d %s' % (code, http.HTTPStatus(code).phrase)),
                              'url': esc(repr(url)), 'body': esc(text)}
        self.send(code, page, 'text/html; charset=UTF-8', headers)

    def route(self):
        routes = {'/': ('GET',), '/web_asset_store.xml': ('GET',), '/fileupload': ('POST', 'OPTIONS'),
                  '/filedelete': ('POST',), '/fileget': ('GET',), '/getmetadata': ('GET',), '/testkey': ('GET',)}
        allowed = routes.get(self.rpath)
        if allowed is None:
            return self.bottle_error(404, 'Not found: %r' % self.rpath)
        method = 'GET' if self.command == 'HEAD' else self.command
        if method not in allowed:
            return self.bottle_error(405, 'Method not allowed.', [('Allow', ','.join(allowed))])
        try:
            if self.rpath == '/':
                return self.send(200, 'It works!', 'text/html; charset=UTF-8')
            if self.rpath == '/web_asset_store.xml':
                return self.send(200, self.store_xml(), 'text/xml; charset=utf-8')
            if self.rpath == '/fileupload':
                cors = [('Access-Control-Allow-Origin', '*')]
                if self.command == 'OPTIONS':
                    return self.send(200, '', 'text/plain; charset=utf-8', cors)
                return self.fileupload(cors)
            return getattr(self, self.rpath[1:])()
        except (TooLarge, ConnectionError):      # body trouble: answered (or not) by process()
            raise
        except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError) as e:
            if self.app.verbose:
                sys.stderr.write('asset server: unhandled %r\n' % e)
            return self.bottle_error(500, 'Internal Server Error')

    def store_xml(self):
        host = '127.0.0.1:%d' % self.server.server_address[1]
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<urls>\n'
                '    <url type="read"><![CDATA[http://%s/fileget]]></url>\n'
                '    <url type="write"><![CDATA[http://%s/fileupload]]></url>\n'
                '    <url type="delete"><![CDATA[http://%s/filedelete]]></url>\n'
                '    <url type="getmetadata"><![CDATA[http://%s/getmetadata]]></url>\n'
                '    <url type="testkey">http://%s/testkey</url>\n</urls>\n') % ((host,) * 5)

    def token_ok(self, params, name_key):
        """validate_token (server.py): empty, malformed, stale or wrong → 403 with an empty body."""
        tok = params.get('token', '')
        if tok == '' or ':' not in tok:
            return False
        mac, ts = tok.split(':')                 # a second ':' raises, as upstream: 500
        try:
            ts = int(ts)
        except ValueError:
            return False
        if not abs(self.app.asset_now() - ts) < TOKEN_TOLERANCE:
            return False
        name = params.get(name_key)
        if name is None:                         # generate_token(ts, None): an AttributeError upstream
            raise AttributeError("'NoneType' object has no attribute 'encode'")
        return hmac.compare_digest(tok, self.app.token(ts, name))

    def forbidden(self, headers=()):
        self.send(403, b'', 'text/plain; charset=utf-8', headers)

    def safe_name(self, name):
        return bool(name) and '/' not in name and '\\' not in name and '..' not in name and '\0' not in name

    def read_form(self):
        """request.forms for a POST: (fields, first file part as (tmp path, size, sha256) or None)."""
        ctype = self.headers.get('Content-Type', '')
        if ctype.startswith('multipart/'):
            return self.parse_multipart(ctype)
        if self.body.length is not None and self.body.length > 102400:   # Bottle MEMFILE_MAX
            raise ValueError('Request entity too large')
        raw = self.body.read_all()
        if len(raw) > 102400:
            raise ValueError('Request entity too large')
        return dict(urllib.parse.parse_qsl(raw.decode('latin-1'), keep_blank_values=True)), None

    def parse_multipart(self, ctype):
        """Streaming multipart/form-data parser; the first file part goes to a temp file, hashed."""
        m = re.search(r'boundary=("[^"]+"|[^;\s]+)', ctype)
        if not m:
            raise ValueError('no boundary')
        delim = b'\r\n--' + m.group(1).strip('"').encode('latin-1')
        buf, fields, upload = b'\r\n', {}, None
        state, out, value, hasher, size, tmp = 'preamble', None, None, None, 0, None
        try:
            while True:
                chunk = self.body.read() if not self.body.done else b''
                buf += chunk
                while True:
                    if state in ('preamble', 'data'):
                        i = buf.find(delim)
                        if i < 0:
                            keep = len(delim) + 1
                            if state == 'data' and len(buf) > keep:
                                self.part_data(out, value, buf[:-keep], hasher)
                                size += len(buf) - keep if out else 0
                                buf = buf[-keep:]
                            break
                        if state == 'data':
                            self.part_data(out, value, buf[:i], hasher)
                            size += i if out else 0
                            if out is not None:
                                out.close()
                                upload, out = (tmp, size, hasher.hexdigest()), None
                            elif value is not None:
                                fields[name] = bytes(value).decode('utf-8', 'replace')
                        buf, state = buf[i + len(delim):], 'boundary'
                    if state == 'boundary':
                        if len(buf) < 2:
                            break
                        if buf[:2] == b'--':
                            return fields, upload
                        j = buf.find(b'\r\n\r\n')
                        if j < 0:
                            if len(buf) > 65536:
                                raise ValueError('part headers too long')
                            break
                        head = buf[:j].decode('utf-8', 'replace')
                        buf, state = buf[j + 4:], 'data'
                        disp = re.search(r'(?im)^content-disposition:(.*)$', head)
                        params = disposition_params(disp.group(1)) if disp else {}
                        name, value, out = params.get('name', ''), None, None
                        if params.get('filename') and upload is None and tmp is None:
                            fd, tmp = tempfile.mkstemp(dir=self.app.tmpdir)
                            out, hasher, size = os.fdopen(fd, 'wb'), hashlib.sha256(), 0
                        elif not params.get('filename'):
                            value = bytearray()
                if not chunk:
                    raise ValueError('truncated multipart body')
        except BaseException:
            if out is not None:
                out.close()
            if tmp:
                os.unlink(tmp)
            raise

    @staticmethod
    def part_data(out, value, data, hasher):
        if out is not None:
            out.write(data)
            hasher.update(data)
        elif value is not None:
            if len(value) + len(data) > 1 << 24:
                raise ValueError('form field too large')
            value += data

    def fileupload(self, cors):
        try:
            fields, upload = self.read_form()
        except ValueError as e:
            if 'too large' in str(e):
                return self.bottle_error(413, 'Request entity too large', cors)
            return self.bottle_error(500, 'Internal Server Error')
        try:
            if not self.token_ok(fields, 'store'):
                return self.forbidden(cors)
            if fields['type'] == 'T':            # KeyError → 500, as upstream
                return self.send(200, 'Ignoring thumbnail upload!', 'text/html; charset=UTF-8', cors)
            store = fields.get('store', '')
            if not self.safe_name(store):        # upstream joins it into a path unchecked
                return self.bottle_error(400, 'Bad store name: %r' % store, cors)
            if upload is None:                   # list(request.files.values())[0] → IndexError
                return self.bottle_error(500, 'Internal Server Error')
            tmp, size, digest = upload
            with self.app.files_lock:            # overwrite, as upload.save(..., overwrite=True)
                os.replace(tmp, os.path.join(self.app.originals, store))
                self.app.files[store] = {'size': size, 'sha256': digest}
            upload = None
            return self.send(200, 'Ok.', 'text/plain; charset=utf-8', cors)
        except (KeyError, AttributeError):       # unhandled upstream: no CORS header on these
            return self.bottle_error(500, 'Internal Server Error')
        finally:
            if upload is not None:
                os.unlink(upload[0])

    def filedelete(self):
        fields, upload = self.read_form()
        if upload:
            os.unlink(upload[0])
        if not self.token_ok(fields, 'filename'):
            return self.forbidden()
        name = fields.get('filename', '')
        if not self.safe_name(name):
            return self.bottle_error(400, 'Bad filename: %r' % name)
        with self.app.files_lock:
            path = os.path.join(self.app.originals, name)
            if not os.path.exists(path):
                return self.bottle_error(404, 'Unknown Error.')   # abort(404)
            os.remove(path)
            self.app.files.pop(name, None)
        return self.send(200, 'Ok.', 'text/plain; charset=utf-8')

    def original(self, name):
        base = os.path.realpath(self.app.state)
        path = os.path.realpath(os.path.join(self.app.originals, name))
        return path if path.startswith(base + os.sep) else None

    def fileget(self):
        """static_file() of originals/<filename>: type required, Range/HEAD/If-Modified-Since."""
        kind = self.q['type']                    # KeyError → 500
        name = self.q.get('filename', '')
        path = self.original(name)
        if path is None:
            return self.bottle_error(403, 'Access denied.')
        if kind == 'T':                          # no ImageMagick here: the original stands in
            int(self.q.get('scale', ''))
            if (mimetypes.guess_type(name)[0] or '') not in ('image/jpeg', 'image/gif', 'image/png', 'image/tiff',
                                                             'application/pdf', 'image/heic', 'image/heif'):
                raise ValueError('cannot thumbnail')
            if not os.path.isfile(path):
                return self.bottle_error(404, 'Missing original: %s' % path)
        if not os.path.isfile(path):
            return self.bottle_error(404, 'File does not exist.')
        mtype, enc = mimetypes.guess_type(name)
        headers = []
        if enc:
            headers.append(('Content-Encoding', enc))
        if mtype and mtype.startswith('text/'):
            mtype += '; charset=UTF-8'
        f = open(path, 'rb')
        try:
            st = os.fstat(f.fileno())
            headers += [('Last-Modified', http_date(st.st_mtime)), ('Accept-Ranges', 'bytes')]
            dn = self.q.get('downloadname')
            if dn:
                dn = urllib.parse.quote(os.path.basename(dn).encode('ascii', 'replace'))
                headers.append(('Content-Disposition', "inline; filename*=utf-8''%s" % dn))
            ims = self.headers.get('If-Modified-Since')
            if ims:
                try:
                    if email.utils.parsedate_to_datetime(ims).timestamp() >= int(st.st_mtime):
                        return self.send(304, b'', None, headers)
                except (TypeError, ValueError):
                    pass
            start, length, status = 0, st.st_size, 200
            rng = self.headers.get('Range')
            if rng:
                m = re.fullmatch(r'bytes=(\d*)-(\d*)', rng.split(',')[0].strip())
                a, b = (m.group(1), m.group(2)) if m else ('', '')
                if m and (a or b):
                    start = int(a) if a else max(0, st.st_size - int(b))
                    end = min(int(b) + 1, st.st_size) if a and b else st.st_size
                    if start >= end:
                        return self.bottle_error(416, 'Requested Range Not Satisfiable')
                    length, status = end - start, 206
                    headers.append(('Content-Range', 'bytes %d-%d/%d' % (start, end - 1, st.st_size)))
            f.seek(start)
            left = [length]

            def chunks():
                while left[0] > 0:
                    block = f.read(min(CHUNK, left[0]))
                    if not block:
                        break
                    left[0] -= len(block)
                    yield block
            headers.append(('X-Timestamp', str(self.app.asset_now())))
            self.send_stream(status, mtype or 'text/html; charset=UTF-8', headers, chunks(), length)
        finally:
            f.close()

    def getmetadata(self):
        path = self.original(self.q.get('filename', ''))
        if path is None or not os.path.isfile(path):
            return self.bottle_error(404, 'Unknown Error.')
        has_exif, taken = exif_summary(path)
        if self.q.get('dt') == 'date':
            if taken is None:
                return self.bottle_error(404, 'DateTime not found in EXIF')
            return self.send(200, taken, 'text/html; charset=UTF-8')
        if has_exif:                             # upstream's str.decode() bug on Python 3
            return self.bottle_error(500, 'Internal Server Error')
        return self.send(200, '[]', 'application/json')

    def testkey(self):
        if not self.token_ok(self.q, 'random'):
            return self.forbidden()
        return self.send(200, 'Ok.', 'text/plain; charset=utf-8')


def exif_summary(path):
    """(has EXIF tags, EXIF DateTimeOriginal or None) for JPEG/TIFF files, enough for getmetadata."""
    with open(path, 'rb') as f:
        head = f.read(4)
        tiff = None
        if head[:2] == b'\xff\xd8':
            f.seek(2)
            while True:
                marker = f.read(4)
                if len(marker) < 4 or marker[0] != 0xFF or marker[1] in (0xD9, 0xDA):
                    break
                seg = f.read(int.from_bytes(marker[2:], 'big') - 2)
                if marker[1] == 0xE1 and seg.startswith(b'Exif\0\0'):
                    tiff = seg[6:]
                    break
        elif head in (b'II*\0', b'MM\0*'):
            f.seek(0)
            tiff = f.read(1 << 20)
    if not tiff or len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return False, None
    end = 'little' if tiff[:2] == b'II' else 'big'

    def u(off, n):
        return int.from_bytes(tiff[off:off + n], end)

    def entries(off):
        if off + 2 > len(tiff):
            return []
        return [(u(off + 2 + 12 * i, 2), u(off + 2 + 12 * i + 2, 2), u(off + 2 + 12 * i + 4, 4), off + 2 + 12 * i + 8)
                for i in range(u(off, 2)) if off + 2 + 12 * i + 12 <= len(tiff)]
    ifd0 = entries(u(4, 4))
    taken = None
    for tag, typ, count, voff in ifd0:
        if tag == 0x8769:                        # Exif sub-IFD
            for t2, ty2, c2, v2 in entries(u(voff, 4)):
                if t2 == 0x9003 and ty2 == 2:
                    start = v2 if c2 <= 4 else u(v2, 4)
                    taken = tiff[start:start + c2].rstrip(b'\0').decode('ascii', 'replace')
    return bool(ifd0), taken


# ------------------------------------------------------------------------------ startup

def learn_asset_server(app, port):
    """attachment_gw.init(): read web_asset_store.xml, note the clock, test the key."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        conn.request('GET', '/web_asset_store.xml')
        r = conn.getresponse()
        text = r.read().decode('utf-8')
        if r.status != 200:
            return
        app.time_delta = int(r.getheader('X-Timestamp')) - int(time.time())
        urls = {u.attrib['type']: u.text for u in ET.fromstring(text).findall('url')}
        rnd = str(uuid.uuid4())
        conn.request('GET', '/testkey?' + urllib.parse.urlencode({'random': rnd, 'token': app.token(
            int(time.time()) + app.time_delta, rnd)}))
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            app.server_urls = urls
        else:
            sys.stderr.write('standin: %s\n' % ('Bad attachment key.' if r.status == 403 else 'Attachment key test failed.'))
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--fixture')
    ap.add_argument('--state-dir')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--no-asset-server', action='store_true',
                    help='Specify behaves as if the asset server was unreachable at its startup')
    ap.add_argument('--asset-key', help='the shared attachment key (default: the fixture\'s)')
    ap.add_argument('--tls-cert', metavar='FILE', help='PEM certificate (chain): the Specify port speaks HTTPS')
    ap.add_argument('--tls-key', metavar='FILE', help='PEM private key of --tls-cert')
    ap.add_argument('--verbose', action='store_true', help='log requests to stderr')
    ap.add_argument('--profile', choices=sorted(PROFILES), default='none',
                    help='request timing: none (as fast as it goes) or specify-7.12 (a real deployment\'s)')
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error('--tls-cert and --tls-key go together')
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    app = App(args)
    specify = Server(app, 'specify', SpecifyHandler, tls)
    asset = Server(app, 'asset', AssetHandler)
    for s in (specify, asset):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    if not args.no_asset_server:
        learn_asset_server(app, asset.server_address[1])
    # A plain flag, not an Event: the handler runs on the main thread, and
    # Event.set() there would wait for the lock Event.wait() holds.
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(sig))

    def watch_stdin():                           # the parent holds our stdin: its death is our EOF
        try:                                     # (raw fd reads: a buffered reader's lock would
            while os.read(0, 4096):              # abort the interpreter's shutdown)
                pass
        except OSError:
            pass
        stop.append('eof')
    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write('READY %d %d\n' % (specify.server_address[1], asset.server_address[1]))
    sys.stdout.flush()
    while not stop:
        time.sleep(0.2)
    for s in (specify, asset):
        s.shutdown()
        s.server_close()
    if app.tmp_state:
        shutil.rmtree(app.state, ignore_errors=True)


if __name__ == '__main__':
    main()
