#!/usr/bin/env python3
"""Tests of the Specify 7 / Web Asset Server stand-in, against the recorded samples.

Each test class starts its own server exactly as a client would (stdin pipe, READY line),
and talks to it with http.client.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = 'test-attachment-key'
UUID_EXT = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(\.\w+)?$')
# The choices list of sample 13, verbatim.
CO_CHOICES = (
    "absoluteages, accession, accession_id, agent1, agent1_id, altcatalognumber, appraisal, appraisal_id, "
    "availability, catalogeddate, catalogeddateprecision, catalogeddateverbatim, cataloger, cataloger_id, "
    "catalognumber, cojo, collectingevent, collectingevent_id, collection, collection_id, collectionmemberid, "
    "collectionobjectattachments, collectionobjectattribute, collectionobjectattribute_id, collectionobjectattrs, "
    "collectionobjectcitations, collectionobjectproperties, collectionobjecttype, collectionobjecttype_id, "
    "components, conservdescriptions, container, container_id, containerowner, containerowner_id, countamt, "
    "createdbyagent, createdbyagent_id, date1, date1precision, deaccessioned, description, determinations, "
    "dnasequences, embargoauthority, embargoauthority_id, embargoreason, embargoreleasedate, "
    "embargoreleasedateprecision, embargostartdate, embargostartdateprecision, exsiccataitems, fieldnotebookpage, "
    "fieldnotebookpage_id, fieldnumber, guid, id, integer1, integer2, inventorizedby, inventorizedby_id, "
    "inventorydate, inventorydateprecision, leftsiderels, modifiedbyagent, modifiedbyagent_id, modifier, name, "
    "notifications, number1, number2, numberofduplicates, objectcondition, ocr, otheridentifiers, paleocontext, "
    "paleocontext_id, preparations, projectnumber, projects, relativeages, remarks, reservedinteger3, "
    "reservedinteger4, reservedtext, reservedtext2, reservedtext3, restrictions, rightsiderels, sgrstatus, text1, "
    "text2, text3, text4, text5, text6, text7, text8, timestampcreated, timestampmodified, totalvalue, "
    "treatmentevents, uniqueidentifier, version, visibility, visibilitysetby, visibilitysetby_id, "
    "voucherrelationships, yesno1, yesno2, yesno3, yesno4, yesno5, yesno6")


# Extensions of a throw-away CA and of a server certificate for 127.0.0.1 (strict-verification clean).
OPENSSL_CNF = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_certs(d):
    """A CA and a certificate for IP 127.0.0.1 signed by it, made in d with openssl(1): (ca, cert, key)."""
    def p(name):
        return os.path.join(d, name)
    with open(p('openssl.cnf'), 'w') as f:
        f.write(OPENSSL_CNF)
    req = ['req', '-config', p('openssl.cnf'), '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    for cmd in ([*req, '-x509', '-extensions', 'ca', '-subj', '/CN=copystand test CA', '-days', '2',
                 '-keyout', p('ca.key'), '-out', p('ca.pem')],
                [*req, '-new', '-subj', '/CN=127.0.0.1', '-keyout', p('server.key'), '-out', p('server.csr')],
                ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-set_serial', '2',
                 '-days', '2', '-extfile', p('openssl.cnf'), '-extensions', 'server', '-out', p('server.pem')]):
        subprocess.run(['openssl', *cmd], check=True, capture_output=True)
    return p('ca.pem'), p('server.pem'), p('server.key')


def connect(port, tls=None, timeout=30):
    """A connection to a stand-in port: HTTPS when given a client SSLContext."""
    if tls:
        return http.client.HTTPSConnection('127.0.0.1', port, timeout=timeout, context=tls)
    return http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)


def mint(name, ts=None, key=KEY):
    ts = int(time.time()) if ts is None else ts
    return hmac.new(key.encode(), (str(ts) + name).encode(), 'md5').hexdigest() + ':' + str(ts)


def multipart(fields, file_bytes=None, file_name='a.jpg', file_first=True):
    """A multipart/form-data body in the order Specify's browser code uses (file first)."""
    boundary = uuid.uuid4().hex
    parts = []
    filepart = (b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                b'Content-Type: application/octet-stream\r\n\r\n' % (boundary.encode(), file_name.encode())
                + file_bytes + b'\r\n') if file_bytes is not None else b''
    for k, v in fields.items():
        parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % (boundary.encode(), k.encode(), v.encode()))
    body = (filepart + b''.join(parts)) if file_first else (b''.join(parts) + filepart)
    return body + b'--%s--\r\n' % boundary.encode(), 'multipart/form-data; boundary=' + boundary


class Resp:
    def __init__(self, r):
        self.status, self.reason, self.msg = r.status, r.reason, r.msg
        self.body = r.read()

    def h(self, name):
        return self.msg.get(name)

    def cookies(self):
        return self.msg.get_all('Set-Cookie') or []

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode('utf-8')


class Standin:
    """The server as a client starts it: a pipe as stdin, the READY line on stdout."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, 'standin.py'), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        m = re.fullmatch(r'READY (\d+) (\d+)\n', line)
        assert m, 'bad READY line: %r' % line
        self.sp, self.ap = int(m.group(1)), int(m.group(2))

    def stop(self):
        self.proc.stdin.close()                  # EOF on stdin: the server must exit
        self.proc.wait(10)
        self.proc.stdout.close()


class Client:
    """Cookie jar + CSRF header, one keep-alive connection per port.  Over HTTPS (tls: a client
    SSLContext) it sends on unsafe methods the Referer Django wants there, as copystand does."""

    def __init__(self, port, tls=None):
        self.port, self.tls, self.cookies, self.conn = port, tls, {}, None

    def request(self, method, path, body=None, headers=None, csrf=True, cookies=True, referer=True):
        hdrs = dict(headers or {})
        if cookies and self.cookies:
            hdrs['Cookie'] = '; '.join('%s=%s' % kv for kv in self.cookies.items())
        if csrf and method not in ('GET', 'HEAD') and 'csrftoken' in self.cookies:
            hdrs.setdefault('X-CSRFToken', self.cookies['csrftoken'])
        if referer and self.tls and method not in ('GET', 'HEAD'):
            hdrs.setdefault('Referer', 'https://127.0.0.1:%d/' % self.port)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault('Content-Type', 'application/json')
        if self.conn is None:                    # the server announces every close: no retries here
            self.conn = connect(self.port, self.tls)
        self.conn.request(method, path, body, hdrs)
        r = Resp(self.conn.getresponse())
        for c in r.cookies():
            name, _, rest = c.partition('=')
            value = rest.split(';')[0]
            if 'Max-Age=0' in c:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if r.h('Connection') == 'close':
            self.close()
        return r

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def login(self, user='spadmin', collection=4, password='testpass'):
        self.get('/context/login/')
        r = self.request('PUT', '/context/login/', {'username': user, 'password': password, 'collection': collection})
        assert r.status == 204, (r.status, r.body)
        return r


class Base(unittest.TestCase):
    args = ()
    tls = None                                   # client SSLContext when the Specify port is HTTPS

    @classmethod
    def setUpClass(cls):
        cls.s = Standin(*cls.args)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def setUp(self):
        self.c = Client(self.s.sp, self.tls)
        self.a = Client(self.s.ap)
        self.control('POST', '/__standin__/faults/reset')

    def tearDown(self):
        self.c.close()
        self.a.close()

    def control(self, method, path, body=None):
        conn = connect(self.s.sp, self.tls)
        conn.request(method, path, json.dumps(body) if body is not None else None)
        r = Resp(conn.getresponse())
        conn.close()
        return r

    def state(self):
        return self.control('GET', '/__standin__/state').json()

    def faults(self, **kw):
        r = self.control('POST', '/__standin__/faults', kw)
        self.assertEqual(r.status, 200, r.body)

    def co_id(self, catalognumber, collection=4):
        r = self.c.get('/api/specify_rows/collectionobject/?fields=id&limit=0&catalognumber=%s&collectionmemberid=%d'
                       % (catalognumber, collection))
        return r.json()[0][0]

    def upload(self, name, data, token=None, client=None, **extra):
        fields = {'token': token or mint(name), 'store': name, 'type': 'O', 'coll': 'Fish', **extra}
        body, ctype = multipart(fields, data)
        return (client or self.a).request('POST', '/fileupload', body, {'Content-Type': ctype})

    def reserve(self, *names):
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': list(names)})
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def join_row(self, co, loc, ordinal=0, title='x.jpg', **att):
        return {'collectionobject': '/api/specify/collectionobject/%d/' % co, 'ordinal': ordinal,
                'attachment': dict({'attachmentlocation': loc, 'mimetype': 'image/jpeg', 'origfilename': title,
                                    'title': title, 'ispublic': False}, **att)}

    def attach(self, co, loc, ordinal=0, title='x.jpg', **att):
        return self.c.request('POST', '/api/specify/collectionobjectattachment/',
                              self.join_row(co, loc, ordinal, title, **att))


class TestSession(Base):
    def test_01_no_session(self):
        r = self.c.get('/api/specify/collectionobject/?limit=1')
        self.assertEqual((r.status, r.body), (403, b''))
        self.assertEqual(r.h('Content-Type'), 'text/html; charset=utf-8')
        self.assertEqual(r.h('Vary'), 'Accept-Language, Cookie')
        self.assertIsNone(r.h('Cache-Control'))

    def test_02_login_get(self):
        r = self.c.get('/context/login/')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.h('Content-Type'), 'application/json')
        self.assertEqual(r.json(), {'collections': {'Fish': 4, 'Plants': 5, 'Insects': 6, 'Fish Tissues': 7},
                                    'username': None, 'password': None, 'collection': None})
        self.assertEqual(r.h('Cache-Control'), 'max-age=0, no-cache, no-store, must-revalidate, private')
        self.assertEqual(r.h('Vary'), 'Cookie, Accept-Language')
        self.assertRegex(r.cookies()[0], r'^csrftoken=[A-Za-z0-9]{32}; expires=[^;]+ GMT; Max-Age=31449600; '
                                         r'Path=/; SameSite=Lax$')

    def test_03_bad_password(self):
        self.c.get('/context/login/')
        tok = self.c.cookies['csrftoken']
        r = self.c.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'wrong', 'collection': 4})
        self.assertEqual((r.status, r.body, r.h('Content-Type')), (403, b'', 'text/html; charset=utf-8'))
        self.assertTrue(r.cookies()[0].startswith('csrftoken=%s;' % tok))
        self.assertNotIn('sessionid', self.c.cookies)

    def test_04_05_login_rotates_csrf(self):
        self.c.get('/context/login/')
        old = self.c.cookies['csrftoken']
        r = self.c.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'testpass', 'collection': 4})
        self.assertEqual((r.status, r.body), (204, b''))
        cookies = r.cookies()
        self.assertRegex(cookies[0], r'^collection=4; expires=[^;]+; Max-Age=31536000; Path=/$')
        self.assertRegex(cookies[1], r'^csrftoken=[A-Za-z0-9]{32}; expires=[^;]+; Max-Age=31449600; Path=/; SameSite=Lax$')
        self.assertRegex(cookies[2], r'^sessionid=[a-z0-9]{32}; HttpOnly; Path=/; SameSite=Lax$')
        new = self.c.cookies['csrftoken']
        self.assertNotEqual(old, new)
        # sample 05: the pre-login token is refused beside the rotated cookie
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']},
                           headers={'X-CSRFToken': old})
        self.assertEqual(r.status, 403)
        self.assertEqual(r.h('Content-Type'), 'text/html; charset=utf-8')
        self.assertIn('CSRF verification failed. Request aborted.', r.text)
        self.assertIn('CSRF token from the &#x27;X-Csrftoken&#x27; HTTP header incorrect.', r.text)
        # Django keeps no copy of the token: the old cookie with the old token still passes
        self.c.cookies['csrftoken'] = old
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']},
                           headers={'X-CSRFToken': old})
        self.assertEqual(r.status, 200)
        self.c.cookies['csrftoken'] = new
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']})
        self.assertEqual(r.status, 200)

    def test_csrf_reasons(self):
        self.c.login()
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': []}, csrf=False)
        self.assertIn('CSRF token missing.', r.text)
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': []},
                           headers={'Origin': 'http://evil.example'})
        self.assertEqual(r.status, 403)
        self.assertIn('Origin checking failed - http://evil.example does not match any trusted origins.', r.text)
        r = self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': []},
                           headers={'Origin': 'http://127.0.0.1:%d' % self.s.sp})
        self.assertEqual(r.status, 200)
        fresh = Client(self.s.sp)
        r = fresh.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'testpass', 'collection': 4})
        fresh.close()
        self.assertEqual(r.status, 403)
        self.assertIn('CSRF cookie not set.', r.text)

    def test_csrf_own_cookie(self):
        """Django takes a CSRF cookie the client made itself: a login needs no GET first."""
        own = 'Abc123' * 5 + 'xy'
        fresh = Client(self.s.sp)
        fresh.cookies['csrftoken'] = own
        r = fresh.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'testpass', 'collection': 4})
        self.assertEqual(r.status, 204)
        self.assertNotEqual(fresh.cookies['csrftoken'], own)            # rotated at login
        self.assertEqual(fresh.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']}).status, 200)
        r = fresh.get('/context/login/')                                 # ensure_csrf_cookie keeps the secret
        self.assertTrue(r.cookies()[0].startswith('csrftoken=%s;' % fresh.cookies['csrftoken']))
        fresh.cookies['csrftoken'] = 'short'
        r = fresh.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']})
        self.assertEqual(r.status, 403)
        self.assertIn('CSRF cookie has incorrect length.', r.text)
        fresh.close()
        self.faults(csrf_issued_only=True)
        other = Client(self.s.sp)
        other.cookies['csrftoken'] = own
        r = other.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'testpass', 'collection': 4})
        self.assertEqual(r.status, 403)
        self.assertIn('CSRF token from the &#x27;X-Csrftoken&#x27; HTTP header incorrect.', r.text)
        other.close()

    def test_27_logout(self):
        self.c.login()
        self.assertEqual(self.c.get('/context/domain.json').status, 200)
        r = self.c.request('PUT', '/context/login/', {'username': None, 'password': None, 'collection': None})
        self.assertEqual(r.status, 204)
        self.assertIn('sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax', r.cookies())
        r = self.c.get('/context/domain.json')
        self.assertEqual((r.status, r.body), (403, b''))

    def test_login_errors(self):
        self.c.get('/context/login/')
        r = self.c.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'testpass'})
        self.assertEqual(r.status, 500)                    # missing key: KeyError
        self.assertEqual(r.h('Content-Type'), 'text/html; charset=utf-8')
        body = r.json()
        self.assertEqual(set(body), {'exception', 'message', 'data', 'traceback'})
        self.assertEqual((body['exception'], body['message']), ('KeyError', 'collection'))
        r = self.c.request('PUT', '/context/login/', {'username': 'spadmin', 'password': 'testpass', 'collection': 99})
        self.assertEqual((r.status, r.text), (400, 'collection 99 does not exist'))
        self.assertEqual(self.c.get('/context/user.json').status, 200)   # logged in all the same

    def test_collection_access_denied(self):
        self.c.login('limited', 6)
        r = self.c.get('/context/user.json')
        self.assertEqual(r.status, 403)
        self.assertEqual(r.h('Content-Type'), 'application/json')
        self.assertEqual(r.json(), {'NoMatchingRuleException': [{'collectionid': 6, 'userid': 3, 'resource':
                                    '/system/sp7/collection', 'action': 'access'}]})
        self.c.cookies['collection'] = '4'
        self.assertEqual(self.c.get('/context/user.json').status, 200)

    def test_no_agent(self):
        self.c.login('noagent', 4)
        user = self.c.get('/context/user.json').json()
        self.assertIsNone(user['agent'])
        self.assertIsNone(user['current_agent'])
        for path in ('/api/specify/collectionobject/?catalognumber=000000001',
                     '/api/specify/collectionobject/1/',
                     '/api/specify_rows/collectionobject/?fields=id'):
            r = self.c.get(path)
            self.assertEqual(r.status, 500, path)
            self.assertEqual(r.json()['exception'], 'AssertionError')

    def test_collection_cookie(self):
        self.c.login()
        self.c.cookies['collection'] = '99'
        self.assertEqual(self.c.get('/context/domain.json').status, 500)
        del self.c.cookies['collection']
        self.assertEqual(self.c.get('/context/domain.json').json()['collection'], 4)
        self.c.cookies['collection'] = '4'
        r = self.c.get('/context/collection/')
        self.assertEqual([x['id'] for x in r.json()['available']], [4, 5, 6, 7])
        self.assertEqual(r.json()['current'], 4)
        r = self.c.request('POST', '/context/collection/', '5', {'Content-Type': 'text/plain'})
        self.assertEqual((r.status, r.text, self.c.cookies['collection']), (200, 'ok', '5'))
        self.assertEqual(self.c.request('POST', '/context/collection/', 'abc').text, 'bad collection id')
        self.assertEqual(self.c.request('POST', '/context/collection/', '99').text, 'collection does not exist')
        lim = Client(self.s.sp)
        lim.login('limited', 4)
        r = lim.request('POST', '/context/collection/', '6')
        lim.close()
        self.assertEqual((r.status, r.text), (400, 'access denied'))

    def test_06_07_09_shapes(self):
        self.c.login()
        u = self.c.get('/context/user.json')
        self.assertEqual(u.h('Cache-Control'), 'max-age=0, private, no-cache, no-store, must-revalidate')
        u = u.json()
        self.assertEqual((u['id'], u['name'], u['usertype'], u['isauthenticated'], u['isadmin']),
                         (1, 'spadmin', 'Manager', True, True))
        self.assertNotIn('password', u)
        self.assertEqual(u['resource_uri'], '/api/specify/specifyuser/1/')
        self.assertEqual([c['collectionname'] for c in u['available_collections']],
                         ['Fish', 'Plants', 'Insects', 'Fish Tissues'])
        self.assertEqual(u['agent']['id'], 1)
        self.assertEqual(u['agent']['division'], '/api/specify/division/1/')
        self.assertEqual(u['agent']['orgmembers'], '/api/specify/agent/?organization=1')
        d = self.c.get('/context/domain.json').json()
        self.assertEqual(d, {'collection': 4, 'discipline': 3, 'division': 1, 'institution': 1,
                             'embeddedCollectingEvent': False, 'embeddedPaleoContext': False,
                             'paleoContextChildTable': None, 'catalogNumFormatName': 'CatalogNumberNumeric',
                             'defaultCollectionObjectType': '/api/specify/collectionobjecttype/1/',
                             'collectionObjectTypeCatalogNumberFormats': {'/api/specify/collectionobjecttype/1/': None}})
        self.c.cookies['collection'] = '6'
        d = self.c.get('/context/domain.json').json()
        self.assertEqual((d['catalogNumFormatName'], d['collectionObjectTypeCatalogNumberFormats']),
                         ('CatalogNumber', {'/api/specify/collectionobjecttype/3/': 'CatalogNumber'}))
        self.c.cookies['collection'] = '5'          # get_collection(): the FIRST collection's name
        r = self.c.get('/context/attachment_settings.json')
        self.assertEqual(r.h('Cache-Control'), 'max-age=86400, private')
        base = 'http://127.0.0.1:%d/' % self.s.ap
        self.assertEqual(r.json(), {'collection': 'Fish', 'token_required_for_get': False, 'read': base + 'fileget',
                                    'write': base + 'fileupload', 'delete': base + 'filedelete',
                                    'getmetadata': base + 'getmetadata', 'testkey': base + 'testkey'})
        self.assertEqual(self.c.get('/attachment_gw/get_settings/').json(), r.json())
        info = self.c.get('/context/system_info.json').json()
        self.assertEqual((info['version'], info['institution'], info['collection']), ('7.12.0.7', 'Test Institution', 'Plants'))
        r = self.c.get('/context/app.resource?name=UIFormatters')
        self.assertEqual(r.status, 200)
        self.assertIn('name="CatalogNumberNumeric"', r.text)
        self.assertEqual(self.c.get('/context/app.resource?name=NoSuchThing').status, 404)

    def test_append_slash_and_unknown(self):
        r = self.c.get('/context/login')
        self.assertEqual((r.status, r.h('Location')), (301, '/context/login/'))
        self.assertEqual(self.c.get('/no/such/page/').status, 404)


class TestLookups(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c0 = Client(cls.s.sp)
        cls.c0.login()

    def setUp(self):
        super().setUp()
        self.c = self.c0

    def tearDown(self):
        self.a.close()

    @classmethod
    def tearDownClass(cls):
        cls.c0.close()
        super().tearDownClass()

    def test_10_lookup_in(self):
        r = self.c.get('/api/specify/collectionobject/?catalognumber__in=000000001%2C000000003%2C000999999'
                       '&domainfilter=true&limit=0')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.h('Cache-Control'), 'private, max-age=2')
        self.assertEqual(r.h('Vary'), 'Accept-Language, Cookie, Accept-Encoding')
        d = r.json()
        self.assertEqual(d['meta'], {'limit': 0, 'offset': 0, 'total_count': 2})
        objs = d['objects']
        self.assertEqual([o['catalognumber'] for o in objs], ['000000001', '000000003'])
        o = objs[0]
        self.assertEqual(list(o)[:3], ['cojo', 'id', 'altcatalognumber'])
        self.assertEqual((o['collection'], o['collectionmemberid'], o['resource_uri']),
                         ('/api/specify/collection/4/', 4, '/api/specify/collectionobject/%d/' % o['id']))
        self.assertEqual(o['collectionobjectattachments'], [])
        current = [d for d in o['determinations'] if d['iscurrent']]
        self.assertEqual(len(current), 1)
        self.assertEqual(o['currentdetermination'], current[0]['resource_uri'])
        self.assertRegex(current[0]['taxon'], r'^/api/specify/taxon/\d+/$')
        self.assertEqual(o['preparations'][0]['barcode'], 'PB-0001')

    def test_scoping(self):
        r = self.c.get('/api/specify/collectionobject/?catalognumber=000000001').json()
        self.assertEqual(sorted(o['collectionmemberid'] for o in r['objects']), [4, 7])
        r = self.c.get('/api/specify/collectionobject/?catalognumber=000000001&domainfilter=true').json()
        self.assertEqual([o['collectionmemberid'] for o in r['objects']], [4])
        r = self.c.get('/api/specify/collectionobject/?altcatalognumber=ALT-1&domainfilter=true').json()
        self.assertEqual(r['meta']['total_count'], 2)
        r = self.c.get('/api/specify/preparation/?barcode=PB-DUP').json()
        self.assertEqual(r['meta']['total_count'], 2)
        r = self.c.get('/api/specify/taxon/?fullname=Salmo%20trutta&domainfilter=true').json()
        self.assertEqual([t['name'] for t in r['objects']], ['trutta'])
        r = self.c.get('/api/specify/taxon/?fullname=Quercus%20robur&domainfilter=true').json()
        self.assertEqual(r['meta']['total_count'], 0)
        r = self.c.get('/api/specify/collectionobject/?catalognumber=escr-0004').json()   # _ci collation
        self.assertEqual([o['catalognumber'] for o in r['objects']], ['ESCR-0004'])
        r = self.c.get('/api/specify/collectionobject/?domainfilter=yes')
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), {'domainfilter': ['Select a valid choice. yes is not one of the available choices.']})
        self.assertEqual(self.c.get('/api/specify/collectionobject/?limit=x').json(), {'limit': ['Enter a whole number.']})

    def test_11_rows(self):
        r = self.c.get('/api/specify_rows/collectionobject/?fields=id%2Ccatalognumber&catalognumber__in='
                       '000000001%2C000000003&domainfilter=true&limit=0')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), [[self.co_id('000000001'), '000000001'], [self.co_id('000000003'), '000000003']])
        self.assertIsNone(r.h('Cache-Control'))
        r = self.c.get('/api/specify_rows/collectionobject/?catalognumber=1')
        self.assertEqual(r.json(), {'fields': ['This field is required.']})
        r = self.c.get('/api/specify_rows/collectionobject/?fields=id,nosuch')   # FieldError: 400
        self.assertEqual(r.status, 400)
        self.assertTrue(r.text.startswith("Cannot resolve keyword 'nosuch' into field."))
        r = self.c.get('/api/specify_rows/collectionobject/?fields=id&nosuch=1')  # FilterError: uncaught, 500
        self.assertEqual((r.status, r.json()['exception']), (500, 'FilterError'))

    def test_12_unpadded_and_default_limit(self):
        r = self.c.get('/api/specify/collectionobject/?catalognumber=3&domainfilter=true')
        self.assertEqual(r.json(), {'objects': [], 'meta': {'limit': 20, 'offset': 0, 'total_count': 0}})
        r = self.c.get('/api/specify/collectionobject/').json()
        self.assertEqual((len(r['objects']), r['meta']['total_count']), (20, 23))
        r = self.c.get('/api/specify/collectionobject/?offset=20&orderby=-catalognumber').json()
        self.assertEqual(len(r['objects']), 3)

    def test_request_line_limit(self):
        """gunicorn (Specify's docker image) refuses request lines over 4094 bytes."""
        values = ','.join('%09d' % i for i in range(1, 450))        # 4489 bytes of values
        r = self.c.get('/api/specify/collectionobject/?domainfilter=true&limit=0&catalognumber__in=' + values)
        self.assertEqual(r.status, 400)
        self.assertIn('Request Line is too large', r.text)
        r = self.c.get('/api/specify/collectionobject/?domainfilter=true&limit=0&catalognumber__in=' +
                       values[:3500])
        self.assertEqual(r.status, 200)

    def test_13_bad_filter(self):
        r = self.c.get('/api/specify/collectionobject/?nosuchfield=1')
        self.assertEqual((r.status, r.h('Content-Type')), (400, 'text/html; charset=utf-8'))
        self.assertEqual(r.text, "Cannot resolve keyword 'nosuchfield' into field. Choices are: " + CO_CHOICES)
        r = self.c.get('/api/specify/collectionobject/?catalognumber__sw=1')
        self.assertEqual(r.text, "Unsupported lookup 'sw' for CharField or join on the field not permitted.")
        r = self.c.get('/api/specify/collectionobject/?id=abc')
        self.assertEqual(r.text, "Field 'id' expected a number but got 'abc'.")
        self.assertEqual(self.c.get('/api/specify/nosuchtable/').status, 404)

    def test_24_missing_record(self):
        r = self.c.get('/api/specify/collectionobject/999999/')
        self.assertEqual((r.status, r.text), (404, 'No Collectionobject matches the given query.'))
        self.assertEqual(r.h('Cache-Control'), 'private, max-age=2')

    def test_filters(self):
        q = lambda s: self.c.get('/api/specify/collectionobject/?limit=0&' + s).json()['meta']['total_count']
        self.assertEqual(q('catalognumber__startswith=2024-'), 2)
        self.assertEqual(q('catalognumber__range=000000010,000000012&collectionmemberid=4'), 3)
        self.assertEqual(q('altcatalognumber__isnull=false'), 3)
        self.assertEqual(q('collection=5'), 4)
        self.assertEqual(q('determinations__taxon__fullname=Bombus%20terrestris'), 2)
        self.assertEqual(q('catalognumber__icontains=escr'), 2)
        self.assertEqual(q('catalognumber__contains=escr'), 0)
        r = self.c.get('/api/specify/preparation/?collectionobject=%d' % self.co_id('000000002')).json()
        self.assertEqual([p['barcode'] for p in r['objects']], ['PB-0002'])

    def test_ephemeral(self):
        r = self.c.request('POST', '/stored_query/ephemeral/', {
            'contexttableid': 1, 'selectdistinct': False, 'countonly': False, 'limit': 0,
            'fields': [{'position': 0, 'stringid': '1.collectionobject.catalogNumber', 'isrelfld': False,
                        'isdisplay': True, 'isnot': False, 'operstart': 10, 'startvalue': '1,000000003,99', 'sorttype': 0}]})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {'results': [[self.co_id('000000001'), '1'], [self.co_id('000000003'), '3']]})

    # -- the ephemeral query's join paths and its permission
    @staticmethod
    def qf(stringid, operstart=8, startvalue='', **kw):
        """One query field as the web importer sends it (position: its place in the list, unless given)."""
        return dict({'stringid': stringid, 'isrelfld': False, 'isdisplay': True, 'isnot': False,
                     'operstart': operstart, 'startvalue': startvalue, 'sorttype': 0}, **kw)

    def ephemeral(self, *fields, client=None, **kw):
        body = dict({'contexttableid': 1, 'selectdistinct': False, 'countonly': False, 'limit': 0,
                     'fields': [dict({'position': i}, **f) for i, f in enumerate(fields)]}, **kw)
        return (client or self.c).request('POST', '/stored_query/ephemeral/', body)

    def seed_join(self, table, base, record_id, filename):
        """A <base>attachment row with its attachment, through the API; removed again after the test."""
        r = self.c.request('POST', '/api/specify/%s/' % table, {
            base: '/api/specify/%s/%d/' % (base, record_id), 'ordinal': 0,
            'attachment': {'attachmentlocation': 'loc-' + filename, 'mimetype': 'image/jpeg',
                           'origfilename': filename, 'title': filename, 'ispublic': False}})
        self.assertEqual(r.status, 201, r.body)
        jid = r.json()['id']

        def remove():
            self.assertEqual(self.control('DELETE', '/__standin__/records/%s/%d' % (table, jid)).status, 204)
        self.addCleanup(remove)
        return jid

    def test_ephemeral_join_rows(self):
        co4, co5, co6 = (self.co_id('00000000%d' % i) for i in (4, 5, 6))
        j1 = self.seed_join('collectionobjectattachment', 'collectionobject', co4, 'co4-a.jpg')
        j2 = self.seed_join('collectionobjectattachment', 'collectionobject', co4, 'co4-b.jpg')
        j3 = self.seed_join('collectionobjectattachment', 'collectionobject', co6, 'co6.jpg')
        cat = self.qf('1.collectionobject.catalogNumber', 10, '4,5,6')
        join = self.qf('1,111-collectionObjectAttachments.collectionobjectattachment.collectionObjectAttachmentId')
        name = self.qf('1,111-collectionobjectattachments,41.attachment.origFilename')
        rows = [[co4, '4', j1, 'co4-a.jpg'], [co4, '4', j2, 'co4-b.jpg'], [co5, '5', None, None], [co6, '6', j3, 'co6.jpg']]
        r = self.ephemeral(cat, join, name)
        self.assertEqual((r.status, r.h('Content-Type')), (200, 'application/json'))
        # one row per attachment, a null row for a record without any; both fields share one join
        self.assertEqual(r.json(), {'results': rows})
        # display columns follow the positions, not the list order
        r = self.ephemeral(dict(name, position=2), dict(cat, position=0), dict(join, position=1))
        self.assertEqual(r.json()['results'], rows)
        # countonly counts the joined rows; limit and offset page them
        self.assertEqual(self.ephemeral(cat, join, name, countonly=True).json(), {'count': 4})
        self.assertEqual(self.ephemeral(cat, join, name, limit=2, offset=1).json()['results'], rows[1:3])
        # a joined field neither shown nor filtered still joins
        r = self.ephemeral(cat, dict(join, isdisplay=False))
        self.assertEqual(r.json()['results'], [row[:2] for row in rows])
        # filters on joined fields filter the joined rows
        r = self.ephemeral(cat, join, dict(name, operstart=1, startvalue='co4-b.jpg'))
        self.assertEqual(r.json()['results'], [rows[1]])
        r = self.ephemeral(cat, join, dict(name, operstart=1, startvalue='co4-b.jpg', isnot=True))
        self.assertEqual(r.json()['results'], [rows[0], rows[2], rows[3]])   # negated "equals" keeps NULL
        r = self.ephemeral(cat, join, dict(name, operstart=0, startvalue='co4%', isnot=True))
        self.assertEqual(r.json()['results'], [rows[3]])                      # NOT (NULL LIKE ..) does not
        r = self.ephemeral(cat, join, dict(name, operstart=12))
        self.assertEqual(r.json()['results'], [rows[2]])
        r = self.ephemeral(cat, join, dict(name, operstart=10, startvalue=''))
        self.assertEqual(r.json()['results'], rows)                           # empty value: no filter
        # two filters on the same field are ORed, on different fields ANDed
        r = self.ephemeral(cat, join, dict(name, operstart=1, startvalue='co4-a.jpg'),
                           dict(name, operstart=1, startvalue='co6.jpg', isdisplay=False))
        self.assertEqual(r.json()['results'], [rows[0], rows[3]])
        r = self.ephemeral(cat, dict(join, operstart=1, startvalue=str(j3)), dict(name, operstart=15, startvalue='co4'))
        self.assertEqual(r.json()['results'], [])

    def test_ephemeral_other_base_tables(self):
        tj = self.seed_join('taxonattachment', 'taxon', 3, 'trutta.jpg')
        r = self.ephemeral(self.qf('4.taxon.fullName', 10, 'Salmo trutta,Salmo salar'),
                           self.qf('4,119-taxonattachments.taxonattachment.taxonAttachmentId'),
                           self.qf('4,119-taxonattachments,41.attachment.origFilename'), contexttableid=4)
        self.assertEqual(r.json(), {'results': [[3, 'Salmo trutta', tj, 'trutta.jpg'], [4, 'Salmo salar', None, None]]})
        # a to-one join from the base table: the catalog number is display-formatted there too
        r = self.ephemeral(self.qf('63.preparation.barCode', 10, 'PB-0001,PB-0002'),
                           self.qf('63,117-preparationattachments.preparationattachment.preparationattachmentid'),
                           self.qf('63,1.collectionobject.catalogNumber'), contexttableid=63)
        self.assertEqual(r.json(), {'results': [[1, 'PB-0001', None, '1'], [2, 'PB-0002', None, '2']]})
        r = self.ephemeral(self.qf('5.agent.lastName', 1, 'determiner'),
                           self.qf('5,109-agentattachments.agentattachment.agentattachmentid'), contexttableid=5)
        self.assertEqual(r.json(), {'results': [[4, 'Determiner', None]]})

    def test_ephemeral_bad_paths(self):
        for stringid, exception in [
                ('1,111-nosuchthings.collectionobjectattachment.collectionobjectattachmentid', 'AttributeError'),
                ('1,111-collectionobjectattachments,5.agent.lastname', 'AttributeError'),   # no "agent" there
                ('1,41-collectionobjectattachments.attachment.origfilename', 'NotImplementedError'),
                ('1,111-collectionobjectattachments,41-collectionobject.attachment.origfilename',
                 'NotImplementedError'),
                ('1,99999-collectionobjectattachments.collectionobjectattachment.ordinal', 'NotImplementedError')]:
            r = self.ephemeral(self.qf('1.collectionobject.catalogNumber', 10, '1'), self.qf(stringid))
            self.assertEqual((r.status, r.h('Content-Type')), (500, 'text/html; charset=utf-8'), stringid)
            self.assertEqual(r.json()['exception'], exception, stringid)
        r = self.ephemeral(self.qf('1,111-nosuchthings.collectionobjectattachment.ordinal'))
        self.assertEqual(r.json()['message'], "'NoneType' object has no attribute 'is_relationship'")
        r = self.ephemeral(self.qf('1.collectionobject.catalogNumber', sorttype=None))
        self.assertEqual((r.status, r.json()['exception']), (500, 'TypeError'))   # QuerySort.by_id(None)

    def test_ephemeral_permission(self):
        other = Client(self.s.sp)
        self.addCleanup(other.close)
        cat = self.qf('1.collectionobject.catalogNumber', 10, '1')
        other.get('/context/login/')
        r = self.ephemeral(cat, client=other)                     # login first: 403, empty
        self.assertEqual((r.status, r.body), (403, b''))
        other.login('limited', 4)                                 # "Bulk Attachment Import" only
        r = self.ephemeral(cat, client=other)
        self.assertEqual((r.status, r.h('Content-Type')), (403, 'application/json'))
        self.assertEqual(r.json(), {'NoMatchingRuleException': [{
            'collectionid': 4, 'userid': 3, 'resource': '/querybuilder/query', 'action': 'execute'}]})
        # get_query() reads the body and the collection before it checks the permission
        r = other.request('POST', '/stored_query/ephemeral/', '{not json')
        self.assertEqual((r.status, r.json()['message']), (500, 'not enough values to unpack (expected 2, got 1)'))
        r = self.ephemeral(cat, client=other, collectionid=5)
        self.assertEqual((r.status, r.json()['NoMatchingRuleException'][0]['collectionid']), (403, 5))
        other.login('noagent', 4)
        r = self.ephemeral(cat, client=other)
        self.assertEqual((r.status, r.json()['NoMatchingRuleException'][0]['userid']), (403, 2))
        r = self.ephemeral(cat, collectionid=5)                   # an admin may, in any collection
        self.assertEqual((r.status, r.json()), (200, {'results': []}))


class TestAttachments(Base):
    def setUp(self):
        super().setUp()
        self.c.login()

    def test_14_15_reserve_and_token(self):
        out = self.reserve('000000003.jpg', '000000003_2.JPG', 'noext')
        self.assertEqual([list(x) for x in out], [['attachmentLocation', 'token']] * 3)
        self.assertTrue(out[0]['attachmentLocation'].endswith('.jpg'))
        self.assertTrue(out[1]['attachmentLocation'].endswith('.JPG'))
        for x in out:
            self.assertRegex(x['attachmentLocation'], UUID_EXT)
            self.assertRegex(x['token'], r'^[0-9a-f]{32}:\d+$')
        loc = out[0]['attachmentLocation']
        r = self.c.get('/attachment_gw/get_token/?filename=' + loc)
        self.assertEqual((r.status, r.h('Content-Type')), (200, 'text/plain'))
        ts = int(r.text.split(':')[1])
        self.assertEqual(r.text, mint(loc, ts))
        self.assertEqual(self.c.get('/attachment_gw/get_token/').status, 500)
        self.assertEqual(self.c.request('POST', '/attachment_gw/get_upload_params/', {'x': 1}).status, 500)

    def test_round_trip_and_full_cycle(self):
        data = os.urandom(300000) + b'\r\n--not-a-boundary\r\n' + os.urandom(5000)
        loc, tok = self.reserve('000000003.jpg')[0].values()
        r = self.upload(loc, data, tok)
        self.assertEqual((r.status, r.body), (200, b'Ok.'))
        self.assertEqual(r.h('Content-Type'), 'text/plain; charset=utf-8')
        self.assertEqual(r.h('Access-Control-Allow-Origin'), '*')
        self.assertRegex(r.h('X-Timestamp'), r'^\d+$')
        self.assertEqual(self.state()['files'][loc], {'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()})
        r = self.a.get('/fileget?type=O&filename=%s&coll=Fish&downloadname=%s' % (loc, urllib.parse.quote('é.jpg')))
        self.assertEqual((r.status, r.body, r.h('Content-Type')), (200, data, 'image/jpeg'))
        self.assertEqual(r.h('Content-Disposition'), "inline; filename*=utf-8''%3F.jpg")
        r = self.c.get('/attachment_gw/proxy/?type=O&filename=%s&coll=Fish' % loc)
        self.assertEqual((r.status, r.body, r.h('Content-Type')), (200, data, 'image/jpeg'))
        # 19: join row + nested attachment
        co = self.co_id('000000003')
        r = self.attach(co, loc, 0, '000000003.jpg')
        self.assertEqual(r.status, 201, r.body)
        j = r.json()
        att = j['attachment']
        self.assertEqual((j['collectionmemberid'], j['ordinal'], j['version'], j['collectionobject']),
                         (4, 0, 0, '/api/specify/collectionobject/%d/' % co))
        self.assertEqual((att['tableid'], att['scopetype'], att['scopeid'], att['attachmentlocation'], att['version']),
                         (1, 0, 4, loc, 0))
        self.assertEqual(att['createdbyagent'], '/api/specify/agent/1/')
        self.assertEqual(j['resource_uri'], '/api/specify/collectionobjectattachment/%d/' % j['id'])
        self.assertEqual(list(att)[:2], ['id', 'attachmentlocation'])
        # 20: reconcile by location
        r = self.c.get('/api/specify/attachment/?attachmentlocation=%s&limit=0' % loc).json()
        self.assertEqual((r['meta']['total_count'], r['objects'][0]['id']), (1, att['id']))
        # 21: inline in the record
        rec = self.c.get('/api/specify/collectionobject/%d/' % co).json()
        self.assertEqual([x['id'] for x in rec['collectionobjectattachments']], [j['id']])
        self.assertEqual(rec['collectionobjectattachments'][0]['attachment']['attachmentlocation'], loc)
        # 22, 23, then a good PUT
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, {'remarks': 'x'})
        self.assertEqual((r.status, r.text), (400, 'Collectionobject object cannot be updated without version info'))
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, {'remarks': 'x', 'version': 7})
        self.assertEqual((r.status, r.text), (409, 'Collectionobject object %d is out of date' % co))
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, {'remarks': 'x', 'version': rec['version']})
        self.assertEqual((r.status, r.json()['version'], r.json()['remarks']), (200, rec['version'] + 1, 'x'))
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/?version=%d' % (co, rec['version'] + 1), {'text2': 'y'})
        self.assertEqual(r.status, 200)
        # 25/26: deleting the join row deletes the attachment row and the file
        deletes = self.state()['requests'].get('POST /filedelete', 0)
        r = self.c.request('DELETE', '/api/specify/collectionobjectattachment/%d/' % j['id'])
        self.assertEqual((r.status, r.body), (204, b''))
        st = self.state()
        self.assertNotIn(loc, st['files'])
        self.assertFalse([a for a in st['attachments'] if a['attachmentlocation'] == loc])
        self.assertEqual(st['requests'].get('POST /filedelete'), deletes + 1)
        r = self.a.get('/fileget?type=O&filename=%s&coll=Fish' % loc)
        self.assertEqual((r.status, r.h('Content-Type')), (404, 'text/html; charset=UTF-8'))
        self.assertIn('<pre>File does not exist.</pre>', r.text)
        self.assertIn('<tt>&#039;http://127.0.0.1:%d/fileget?type=O&amp;filename=' % self.s.ap, r.text)

    def test_put_replaces_dependent_set(self):
        co = self.co_id('000000007')
        locs = []
        for i in range(2):
            loc, tok = self.reserve('a%d.jpg' % i)[0].values()
            self.assertEqual(self.upload(loc, b'img%d' % i, tok).status, 200)
            self.assertEqual(self.attach(co, loc, i).status, 201)
            locs.append(loc)
        rec = self.c.get('/api/specify/collectionobject/%d/' % co).json()
        rec['collectionobjectattachments'] = rec['collectionobjectattachments'][1:]   # drop the first
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, rec)
        self.assertEqual(r.status, 200, r.body)
        kept = r.json()['collectionobjectattachments']
        self.assertEqual([(x['attachment']['attachmentlocation'], x['version']) for x in kept], [(locs[1], 1)])
        st = self.state()
        self.assertNotIn(locs[0], st['files'])
        self.assertIn(locs[1], st['files'])
        # appending like the web importer: ordinal = number of existing attachments
        loc, tok = self.reserve('b.jpg')[0].values()
        self.upload(loc, b'new', tok)
        rec = r.json()
        rec['collectionobjectattachments'].append({'ordinal': 1, 'attachment': {
            'attachmentlocation': loc, 'mimetype': 'image/jpeg', 'origfilename': 'b.jpg', 'title': 'b.jpg',
            'ispublic': False, 'tableid': 1}})
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, rec)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([x['attachment']['attachmentlocation'] for x in r.json()['collectionobjectattachments']],
                         [locs[1], loc])

    def test_join_row_validation(self):
        co = self.co_id('000000008')
        before = self.state()['attachments']
        r = self.c.request('POST', '/api/specify/collectionobjectattachment/', {
            'collectionobject': '/api/specify/collectionobject/%d/' % co, 'attachment': {'attachmentlocation': 'x.jpg'}})
        self.assertEqual(r.status, 500)
        self.assertEqual((r.json()['exception'], r.json()['data']), ('IntegrityError', "Column 'Ordinal' cannot be null"))
        r = self.attach(co, 'y.jpg', title='t' * 256)
        self.assertEqual((r.status, r.json()['exception']), (500, 'DataError'))
        r = self.attach(co, 'z' * 129)
        self.assertEqual((r.status, r.json()['exception']), (500, 'DataError'))
        r = self.c.request('POST', '/api/specify/collectionobjectattachment/', {
            'collectionobject': '/api/specify/collectionobject/%d/' % co, 'ordinal': 0})
        self.assertEqual((r.status, r.json()['id']), (201, None))   # save aborted: nothing stored
        self.assertEqual(self.state()['attachments'], before)
        r = self.c.request('POST', '/api/specify/attachment/', {'attachmentlocation': 'solo.jpg'})
        self.assertEqual((r.status, r.json()['tableid'], r.json()['origfilename']), (201, 41, ''))
        r = self.c.request('POST', '/api/specify/collectionobjectattachment/', '{not json')
        self.assertEqual((r.status, r.json()['exception']), (500, 'JSONDecodeError'))

    def test_17_bad_token_and_window(self):
        name = str(uuid.uuid4()) + '.jpg'
        r = self.upload(name, b'abc', 'deadbeef:%d' % int(time.time()))
        self.assertEqual((r.status, r.body, r.h('Content-Length'), r.h('Content-Type')),
                         (403, b'', '0', 'text/plain; charset=utf-8'))
        self.assertRegex(r.h('X-Timestamp'), r'^\d+$')
        rnd = 'r4nd0m'
        for delta, status in ((-149, 200), (149, 200), (-151, 403), (151, 403), (-150, 403)):
            while time.time() % 1 > 0.5:         # stay inside one second: the window is strict
                time.sleep(0.05)
            now = int(time.time())
            self.assertEqual(self.upload(name, b'abc', mint(name, now + delta)).status, status, delta)
            r = self.a.get('/testkey?random=%s&token=%s' % (rnd, mint(rnd, now + delta)))
            self.assertEqual(r.status, status, delta)
        self.assertEqual(self.upload(name, b'abc', mint('other.jpg')).status, 403)
        self.assertEqual(self.a.get('/testkey?random=%s&token=%s' % (rnd, mint(rnd, key='wrong'))).status, 403)

    def test_asset_server_edges(self):
        name = str(uuid.uuid4()) + '.png'
        r = self.upload(name, b'x', type='T')
        self.assertEqual((r.status, r.text), (200, 'Ignoring thumbnail upload!'))
        body, ctype = multipart({'token': mint(name), 'store': name, 'coll': 'Fish'}, b'x')
        self.assertEqual(self.a.request('POST', '/fileupload', body, {'Content-Type': ctype}).status, 500)
        body, ctype = multipart({'token': mint(name), 'store': name, 'type': 'O', 'coll': 'Fish'})
        self.assertEqual(self.a.request('POST', '/fileupload', body, {'Content-Type': ctype}).status, 500)
        r = self.a.request('POST', '/fileupload', urllib.parse.urlencode({'token': mint(name), 'store': name, 'type': 'O'}),
                           {'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(r.status, 500)
        for bad in ('../x.jpg', 'a/b.jpg', ''):
            self.assertEqual(self.upload(bad, b'x').status, 400, bad)
        r = self.a.request('OPTIONS', '/fileupload')
        self.assertEqual((r.status, r.h('Access-Control-Allow-Origin')), (200, '*'))
        self.assertEqual(self.a.get('/filedelete').status, 405)
        self.assertEqual(self.a.get('/fileget?filename=%s' % name).status, 500)   # type missing
        self.assertEqual(self.a.request('HEAD', '/fileget?type=O&filename=nope.jpg&coll=Fish').status, 404)
        self.assertEqual(self.a.get('/').text, 'It works!')
        r = self.a.get('/web_asset_store.xml')
        self.assertEqual(r.h('Content-Type'), 'text/xml; charset=utf-8')
        self.assertIn('<url type="testkey">http://127.0.0.1:%d/testkey</url>' % self.s.ap, r.text)
        # delete: token, 404 for a missing file, 200 for a present one
        self.assertEqual(self.upload(name, b'y').status, 200)
        form = lambda n, t: urllib.parse.urlencode({'filename': n, 'coll': 'Fish', 'token': t})
        hdr = {'Content-Type': 'application/x-www-form-urlencoded'}
        self.assertEqual(self.a.request('POST', '/filedelete', form(name, 'bad:1'), hdr).status, 403)
        self.assertEqual(self.a.request('POST', '/filedelete', form(name, mint(name)), hdr).text, 'Ok.')
        self.assertEqual(self.a.request('POST', '/filedelete', form(name, mint(name)), hdr).status, 404)
        self.assertEqual(self.a.get('/getmetadata?filename=%s&dt=date' % name).status, 404)

    def test_chunked_and_expect_continue(self):
        name = str(uuid.uuid4()) + '.tif'
        data = os.urandom(3 * (1 << 20) + 17)
        body, ctype = multipart({'token': mint(name), 'store': name, 'type': 'O', 'coll': 'Fish'}, data, file_first=False)
        conn = http.client.HTTPConnection('127.0.0.1', self.s.ap, timeout=30)
        pieces = (body[i:i + 65536] for i in range(0, len(body), 65536))
        conn.request('POST', '/fileupload', pieces, {'Content-Type': ctype}, encode_chunked=True)
        r = Resp(conn.getresponse())
        conn.close()
        self.assertEqual((r.status, r.body), (200, b'Ok.'))
        self.assertEqual(self.state()['files'][name]['sha256'], hashlib.sha256(data).hexdigest())
        # Expect: 100-continue, as libcurl sends for large POSTs
        s = socket.create_connection(('127.0.0.1', self.s.ap), timeout=10)
        s.sendall(b'POST /fileupload HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n'
                  b'Expect: 100-continue\r\n\r\n' % (ctype.encode(), len(body)))
        self.assertTrue(s.recv(100).startswith(b'HTTP/1.1 100 Continue\r\n\r\n'))
        s.sendall(body)
        answer = b''
        while not answer.endswith(b'Ok.'):
            answer += s.recv(4096)
        self.assertTrue(answer.startswith(b'HTTP/1.1 200 '))
        s.close()
        # a chunked JSON body to Specify
        conn = http.client.HTTPConnection('127.0.0.1', self.s.sp, timeout=30)
        conn.request('POST', '/attachment_gw/get_upload_params/', iter([b'{"filenames": ', b'["a.jpg"]}']),
                     {'Content-Type': 'application/json', 'X-CSRFToken': self.c.cookies['csrftoken'],
                      'Cookie': '; '.join('%s=%s' % kv for kv in self.c.cookies.items())}, encode_chunked=True)
        r = Resp(conn.getresponse())
        conn.close()
        self.assertEqual((r.status, len(r.json())), (200, 1))

    def test_keep_alive(self):
        conn = http.client.HTTPConnection('127.0.0.1', self.s.sp, timeout=10)
        conn.request('GET', '/context/login/')
        Resp(conn.getresponse())
        sock = conn.sock
        conn.request('GET', '/context/system_info.json')
        r = Resp(conn.getresponse())
        self.assertIs(conn.sock, sock)
        self.assertEqual(r.status, 200)
        conn.close()


class TestNoAssetServer(Base):
    args = ('--no-asset-server',)

    def test_unconfigured(self):
        self.c.login()
        r = self.c.get('/context/attachment_settings.json')
        self.assertEqual((r.status, r.body), (200, b'{}'))
        self.assertEqual(self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']}).status, 500)
        r = self.c.get('/attachment_gw/get_token/?filename=a.jpg')
        self.assertEqual((r.status, r.body), (200, b''))
        self.assertEqual(self.c.get('/attachment_gw/proxy/?type=O&filename=a.jpg').status, 400)
        self.assertEqual(self.a.get('/').status, 200)          # the asset server itself is up


@unittest.skipUnless(shutil.which('openssl'), 'needs the openssl program to make certificates')
class TestTLS(Base):
    """--tls-cert/--tls-key: the Specify port speaks HTTPS, and Django's HTTPS Referer rule applies."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        ca, cert, key = make_certs(cls.dir)
        cls.tls = ssl.create_default_context(cafile=ca)
        cls.args = ('--tls-cert', cert, '--tls-key', key)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.dir)

    def test_handshake(self):
        with self.assertRaises((http.client.HTTPException, OSError)):
            plain = connect(self.s.sp)              # plain HTTP to the HTTPS port: hung up on
            try:
                plain.request('GET', '/context/login/')
                plain.getresponse()
            finally:
                plain.close()
        untrusted = connect(self.s.sp, ssl.create_default_context())
        with self.assertRaises(ssl.SSLCertVerificationError):
            untrusted.request('GET', '/context/login/')
        untrusted.close()
        # a client that never says hello blocks no one: handshakes happen per connection
        mute = socket.create_connection(('127.0.0.1', self.s.sp), timeout=10)
        try:
            t = time.time()
            self.assertEqual(self.c.get('/context/login/').status, 200)
            self.assertLess(time.time() - t, 5)
        finally:
            mute.close()

    def test_referer_rule(self):
        sp = self.s.sp
        self.c.login()                                  # PUT /context/login/ with its Referer

        def post(**headers):
            return self.c.request('POST', '/attachment_gw/get_upload_params/', {'filenames': ['a.jpg']},
                                  headers=headers, referer=False)
        self.assertEqual(post(Referer='https://127.0.0.1:%d/' % sp).status, 200)
        self.assertEqual(post(Referer='https://127.0.0.1:%d/specify/view/' % sp).status, 200)
        for referer, reason in (
                (None, 'Referer checking failed - no Referer.'),
                ('http://127.0.0.1:%d/' % sp, 'Referer checking failed - Referer is insecure while host is secure.'),
                ('https://evil.example/', 'Referer checking failed - https://evil.example/ does not match any '
                                          'trusted origins.'),
                ('https://127.0.0.1:%d/' % (sp + 1), 'does not match any trusted origins.'),
                ('127.0.0.1/', 'Referer checking failed - Referer is malformed.'),
                ('https://[::1/', 'Referer checking failed - Referer is malformed.')):
            r = post(**({'Referer': referer} if referer else {}))
            self.assertEqual((r.status, r.h('Content-Type')), (403, 'text/html; charset=utf-8'), referer)
            self.assertIn('CSRF verification failed. Request aborted.', r.text)
            self.assertIn(reason, r.text)
        self.assertIn('this HTTPS site requires a \u201cReferer header\u201d', post().text)
        # an Origin takes the Referer's place, and must be https://host
        self.assertEqual(post(Origin='https://127.0.0.1:%d' % sp).status, 200)
        r = post(Origin='http://127.0.0.1:%d' % sp, Referer='https://127.0.0.1:%d/' % sp)
        self.assertIn('Origin checking failed - http://127.0.0.1:%d does not match any trusted origins.' % sp, r.text)
        self.assertEqual(self.c.get('/context/user.json').status, 200)    # safe methods need none

    def test_referer_checked_before_token(self):
        fresh = Client(self.s.sp, self.tls)
        creds = {'username': 'spadmin', 'password': 'testpass', 'collection': 4}
        r = fresh.request('PUT', '/context/login/', creds, referer=False)
        self.assertIn('Referer checking failed - no Referer.', r.text)
        r = fresh.request('PUT', '/context/login/', creds)
        self.assertEqual(r.status, 403)
        self.assertIn('CSRF cookie not set.', r.text)
        self.assertIn('this site requires a CSRF cookie when submitting forms', r.text)
        fresh.get('/context/login/')
        self.assertEqual(fresh.request('PUT', '/context/login/', creds, referer=False).status, 403)
        self.assertEqual(fresh.request('PUT', '/context/login/', creds).status, 204)
        fresh.close()

    def test_asset_server_stays_http(self):
        self.c.login()
        settings = self.c.get('/context/attachment_settings.json').json()
        for k in ('read', 'write', 'delete', 'testkey'):
            self.assertTrue(settings[k].startswith('http://127.0.0.1:%d/' % self.s.ap), settings[k])
        loc, tok = self.reserve('t.jpg')[0].values()
        self.assertEqual(self.upload(loc, b'over http', tok).status, 200)
        self.assertEqual(self.state()['files'][loc]['size'], 9)     # the control API is HTTPS too


class TestFaults(Base):
    def setUp(self):
        super().setUp()
        self.c.login()

    def test_latency(self):
        self.faults(latency_ms=300)
        t = time.time()
        self.c.get('/context/system_info.json')
        self.assertGreaterEqual(time.time() - t, 0.3)

    def test_error_rate(self):
        self.faults(error_rate=1.0, error_paths=['/api/'])
        r = self.c.get('/api/specify/collectionobject/1/')
        self.assertEqual(r.status, 503)
        self.assertTrue(r.body.startswith(b'<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>'))
        self.assertEqual(self.c.get('/context/system_info.json').status, 200)
        self.faults(error_rate=1.0, error_status=502, error_paths=None)
        self.assertEqual(self.a.get('/').status, 502)

    def test_drop_after_commit(self):
        loc, tok = self.reserve('d.jpg')[0].values()
        self.faults(drop_after_commit_rate=1.0, error_paths=['/api/'])
        conn = http.client.HTTPConnection('127.0.0.1', self.s.sp, timeout=10)
        body = json.dumps({'collectionobject': '/api/specify/collectionobject/%d/' % self.co_id('000000009'),
                           'ordinal': 0, 'attachment': {'attachmentlocation': loc}})
        conn.request('POST', '/api/specify/collectionobjectattachment/', body, {
            'Content-Type': 'application/json', 'X-CSRFToken': self.c.cookies['csrftoken'],
            'Cookie': '; '.join('%s=%s' % kv for kv in self.c.cookies.items())})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            conn.getresponse()
        conn.close()
        self.assertEqual([a['attachmentlocation'] for a in self.state()['attachments']].count(loc), 1)
        self.assertEqual(self.upload(loc, b'still works', tok).status, 200)   # only /api/ drops

    def test_sessions(self):
        self.faults(expire_sessions=True)
        self.assertEqual(self.c.get('/context/user.json').status, 403)
        self.c.login()
        self.assertEqual(self.c.get('/context/user.json').status, 200)
        self.faults(session_ttl_s=0)
        time.sleep(0.05)
        self.assertEqual(self.c.get('/context/user.json').status, 403)

    def test_clock_skew(self):
        loc, tok = self.reserve('s.jpg')[0].values()
        self.faults(asset_clock_skew_s=600)
        self.assertEqual(self.upload(loc, b'x', tok).status, 403)
        tok = self.c.get('/attachment_gw/get_token/?filename=' + loc).text   # still Specify's old clock
        self.assertEqual(self.upload(loc, b'x', tok).status, 403)
        self.faults(asset_clock_skew_s=0)
        self.assertEqual(self.upload(loc, b'x', tok).status, 200)

    def test_max_upload_bytes(self):
        self.faults(max_upload_bytes=1000)
        name = str(uuid.uuid4()) + '.jpg'
        r = self.upload(name, os.urandom(5000))
        self.assertEqual(r.status, 413)
        self.assertTrue(r.body.startswith(b'<html>\r\n<head><title>413 Request Entity Too Large</title></head>'))
        body, ctype = multipart({'token': mint(name), 'store': name, 'type': 'O'}, os.urandom(5000))
        conn = http.client.HTTPConnection('127.0.0.1', self.s.ap, timeout=10)
        conn.request('POST', '/fileupload', iter([body[:500], body[500:]]), {'Content-Type': ctype}, encode_chunked=True)
        self.assertEqual(conn.getresponse().status, 413)
        conn.close()
        # with Expect: 100-continue the answer is 413 at once, and the body is never asked for
        s = socket.create_connection(('127.0.0.1', self.s.ap), timeout=10)
        s.sendall(b'POST /fileupload HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n'
                  b'Expect: 100-continue\r\n\r\n' % (ctype.encode(), len(body)))
        self.assertTrue(s.recv(200).startswith(b'HTTP/1.1 413 Request Entity Too Large\r\n'))
        s.close()
        self.assertEqual(self.upload(name, b'small').status, 200)

    def test_asset_down(self):
        kept = http.client.HTTPConnection('127.0.0.1', self.s.ap, timeout=10)
        kept.request('GET', '/')
        self.assertEqual(kept.getresponse().read(), b'It works!')
        self.faults(asset_down=True)
        for conn in (kept, http.client.HTTPConnection('127.0.0.1', self.s.ap, timeout=10)):
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                conn.request('GET', '/')
                conn.getresponse()
            conn.close()
        # Specify's own call to the asset server fails too: deleting an attachment is a 500, rolled back
        self.faults(asset_down=False)
        loc, tok = self.reserve('e.jpg')[0].values()
        self.upload(loc, b'e', tok)
        j = self.attach(self.co_id('000000010'), loc).json()
        self.faults(asset_down=True)
        r = self.c.request('DELETE', '/api/specify/collectionobjectattachment/%d/' % j['id'])
        self.assertEqual((r.status, r.json()['exception']), (500, 'ConnectionError'))
        self.assertIn(j['id'], [a['join_id'] for a in self.state()['attachments']])

    def test_conflict_next_put(self):
        co = self.co_id('000000011')
        rec = self.c.get('/api/specify/collectionobject/%d/' % co).json()
        self.faults(conflict_next_put=1)
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, {'remarks': 'a', 'version': rec['version']})
        self.assertEqual(r.status, 409)
        rec = self.c.get('/api/specify/collectionobject/%d/' % co).json()
        r = self.c.request('PUT', '/api/specify/collectionobject/%d/' % co, {'remarks': 'a', 'version': rec['version']})
        self.assertEqual(r.status, 200)

    def test_seed_and_delete_records(self):
        r = self.control('POST', '/__standin__/records', {'table': 'collectionobject', 'fields': {
            'catalognumber': '000099999', 'collection': 4, 'collectionmemberid': 4}})
        self.assertEqual(r.status, 201)
        new = r.json()['id']
        self.assertEqual(self.co_id('000099999'), new)
        self.assertEqual(self.control('DELETE', '/__standin__/records/collectionobject/%d' % new).status, 204)
        self.assertEqual(self.c.get('/api/specify/collectionobject/%d/' % new).status, 404)


class TestBulk(Base):
    """backend/bulk_copy's POST /bulk_copy/bulk/<table>/ (Specify 7.11.2 on)."""

    def setUp(self):
        super().setUp()
        self.c.login()

    def locations(self, n):
        return [x['attachmentLocation'] for x in self.reserve(*['b%d.jpg' % i for i in range(n)])]

    def test_creates_each_in_order(self):
        r = self.c.request('POST', '/bulk_copy/bulk/collectionobjectattachment/', [])
        self.assertEqual((r.status, r.json()), (201, []))     # the probe: nothing created
        co3, co7 = self.co_id('000000003'), self.co_id('000000007')
        locs = self.locations(3)
        rows = [self.join_row(co3, locs[0], 5), self.join_row(co7, locs[1], 6), self.join_row(co3, locs[2], 7)]
        r = self.c.request('POST', '/bulk_copy/bulk/collectionobjectattachment/', rows)
        self.assertEqual(r.status, 201, r.body)
        out = r.json()
        self.assertEqual([(o['attachment']['attachmentlocation'], o['ordinal'], o['collectionobject']) for o in out],
                         [(locs[0], 5, '/api/specify/collectionobject/%d/' % co3),
                          (locs[1], 6, '/api/specify/collectionobject/%d/' % co7),
                          (locs[2], 7, '/api/specify/collectionobject/%d/' % co3)])
        self.assertEqual(len({o['id'] for o in out}), 3)
        rec = self.c.get('/api/specify/collectionobject/%d/' % co3).json()
        self.assertEqual({x['id'] for x in rec['collectionobjectattachments']} & {o['id'] for o in out},
                         {out[0]['id'], out[2]['id']})
        # the same view under specify/urls.py's r'^specify' include
        loc = self.locations(1)[0]
        r = self.c.request('POST', '/api/specifybulk/collectionobjectattachment/', [self.join_row(co7, loc, 9)])
        self.assertEqual((r.status, r.json()[0]['attachment']['attachmentlocation']), (201, loc))

    def test_no_outer_transaction(self):
        """A failing object fails the request; the objects before it stay."""
        co = self.co_id('000000008')
        gone = self.control('POST', '/__standin__/records', {'table': 'collectionobject', 'fields': {
            'catalognumber': '000000777', 'collectionmemberid': 4, 'collection': 4}}).json()['id']
        self.assertEqual(self.control('DELETE', '/__standin__/records/collectionobject/%d' % gone).status, 204)
        locs = self.locations(3)
        rows = [self.join_row(co, locs[0], 0), self.join_row(gone, locs[1], 0), self.join_row(co, locs[2], 1)]
        r = self.c.request('POST', '/bulk_copy/bulk/collectionobjectattachment/', rows)
        self.assertEqual(r.status, 404)
        kept = [a['attachmentlocation'] for a in self.state()['attachments']]
        self.assertIn(locs[0], kept)
        self.assertNotIn(locs[1], kept)
        self.assertNotIn(locs[2], kept)

    def test_fault_fail_at(self):
        co = self.co_id('000000009')
        locs = self.locations(3)
        path = '/bulk_copy/bulk/collectionobjectattachment/'
        self.faults(bulk_fail_at=1)
        self.assertEqual(self.c.request('POST', path, [self.join_row(co, locs[0], 0)]).status, 201)   # too few
        r = self.c.request('POST', path, [self.join_row(co, loc, i + 1) for i, loc in enumerate(locs[1:])])
        self.assertEqual((r.status, r.json()['exception']), (500, 'IntegrityError'))
        kept = [a['attachmentlocation'] for a in self.state()['attachments']]
        self.assertEqual([loc in kept for loc in locs], [True, True, False])
        self.assertIsNone(self.control('GET', '/__standin__/faults').json()['bulk_fail_at'])   # once

    def test_refusals(self):
        path = '/bulk_copy/bulk/collectionobjectattachment/'
        before = self.state()['attachments']
        self.assertEqual((self.c.get(path).status, self.c.get(path).h('Allow')), (405, 'POST'))
        r = self.c.request('POST', path, {'ordinal': 0})          # a dict: its keys are iterated
        self.assertEqual(r.status, 500)
        self.assertEqual(self.c.request('POST', path, [], csrf=False).status, 403)
        anon = Client(self.s.sp)
        r = anon.request('POST', path, [], csrf=False)
        anon.close()
        self.assertEqual(r.status, 403)
        self.faults(bulk=False)                                   # a Specify before 7.11.2
        r = self.c.request('POST', path, [])
        self.assertEqual(r.status, 404)
        self.assertIn('The requested resource was not found', r.text)
        self.assertEqual(self.state()['attachments'], before)


class TestProfile(Base):
    """--profile specify-7.12: requests take what they take on a real Specify 7.12 (appendix D)."""
    args = ('--profile', 'specify-7.12')

    def setUp(self):
        super().setUp()
        self.c.login()

    def timed(self, fn):
        t = time.monotonic()
        r = fn()
        return r, time.monotonic() - t

    def test_latencies(self):
        loc = self.reserve('p.jpg')[0]['attachmentLocation']
        r, t = self.timed(lambda: self.c.get('/attachment_gw/get_token/?filename=' + loc))
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(t, 0.050)
        r, t = self.timed(lambda: self.c.get('/api/specify/collectionobject/%d/' % self.co_id('000000003')))
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(t, 0.120)
        self.faults(profile='none')
        r, t = self.timed(lambda: self.c.get('/attachment_gw/get_token/?filename=' + loc))
        self.assertEqual(r.status, 200)
        self.assertLess(t, 0.020)
        self.assertEqual(self.control('POST', '/__standin__/faults', {'profile': 'fast'}).status, 400)
        self.control('POST', '/__standin__/faults/reset')   # back to the command line's profile
        self.assertEqual(self.control('GET', '/__standin__/faults').json()['profile'], 'specify-7.12')

    def test_bulk_rows(self):
        """A bulk request: a request's cost, then each row's own."""
        co = self.co_id('000000003')
        locs = [x['attachmentLocation'] for x in self.reserve(*['p%d.jpg' % i for i in range(5)])]
        rows = [self.join_row(co, loc, 20 + i) for i, loc in enumerate(locs)]
        r, t = self.timed(lambda: self.c.request('POST', '/bulk_copy/bulk/collectionobjectattachment/', rows))
        self.assertEqual(r.status, 201, r.body)
        self.assertGreaterEqual(t, 0.052 + 5 * 0.028)

    def parallel(self, fns):
        out, threads = [None] * len(fns), []
        for i, fn in enumerate(fns):
            def run(i=i, fn=fn):
                t = time.monotonic()
                r = fn()
                out[i] = (r.status, t, time.monotonic())
            threads.append(threading.Thread(target=run))
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        return out

    def test_two_cores(self):
        """Two get_tokens overlap; a third waits for a free core."""
        clients = [Client(self.s.sp) for _ in range(3)]
        for cl in clients:
            cl.cookies = dict(self.c.cookies)
        t0 = time.monotonic()
        out = self.parallel([lambda cl=cl: cl.get('/attachment_gw/get_token/?filename=x.jpg') for cl in clients])
        for cl in clients:
            cl.close()
        self.assertEqual([o[0] for o in out], [200] * 3)
        ends = sorted(o[2] - t0 for o in out)
        self.assertGreaterEqual(ends[2], 0.100)  # the third after two
        # Two at once, never three: the stand-in's own count, not a clock that a busy machine stretches.
        self.assertEqual(self.state()['busiest']['GET /attachment_gw/get_token/'], 2)

    def test_asset_uploads_serialized(self):
        """One upload at a time, each at 150 MB/s at most: two of 3 MB take 40 ms together."""
        data = os.urandom(3000000)
        names = [str(uuid.uuid4()) + '.jpg' for _ in range(2)]
        clients = [Client(self.s.ap) for _ in names]
        t0 = time.monotonic()
        out = self.parallel([lambda n=n, cl=cl: self.upload(n, data, client=cl) for n, cl in zip(names, clients)])
        for cl in clients:
            cl.close()
        self.assertEqual([o[0] for o in out], [200, 200])
        self.assertGreaterEqual(max(o[2] for o in out) - t0, 0.040)
        # Never two served at once (the clients' own end times may bunch up on a busy machine).
        self.assertEqual(self.state()['busiest']['POST /fileupload'], 1)
        _, t = self.timed(lambda: self.a.request('HEAD', '/fileget?type=O&coll=Fish&filename=' + names[0]))
        self.assertLess(t, 0.030)


class TestLifecycle(unittest.TestCase):
    def test_exits_on_sigterm(self):
        s = Standin()
        s.proc.terminate()
        self.assertEqual(s.proc.wait(10), 0)
        s.proc.stdin.close()
        s.proc.stdout.close()

    def test_fixture_option_and_extra_formats(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp()
        try:
            fx = json.load(open(os.path.join(HERE, 'fixture.json')))
            fx['app_resources']['UIFormatters']['append'] = [
                '<format system="false" name="StandinExtra" class="edu.ku.brc.specify.datamodel.CollectionObject" '
                'fieldname="catalogNumber"><field type="numeric" size="5"/></format>']
            json.dump(fx, open(os.path.join(d, 'fx.json'), 'w'))
            shutil.copy(os.path.join(HERE, 'UIFormatters.xml'), d)
            s = Standin('--fixture', os.path.join(d, 'fx.json'), '--state-dir', os.path.join(d, 'state'))
            c = Client(s.sp)
            c.login()
            r = c.get('/context/app.resource?name=UIFormatters')
            c.close()
            s.stop()
            self.assertTrue(r.text.rstrip().endswith('name="StandinExtra" class="edu.ku.brc.specify.datamodel.'
                                                     'CollectionObject" fieldname="catalogNumber"><field type="numeric" '
                                                     'size="5"/></format>\n\n</formats>'))
            ET = __import__('xml.etree.ElementTree').etree.ElementTree
            self.assertIn('StandinExtra', [f.get('name') for f in ET.fromstring(r.body).findall('format')])
            self.assertTrue(os.path.isdir(os.path.join(d, 'state', 'originals')))
        finally:
            shutil.rmtree(d)

    def test_exits_on_stdin_eof(self):
        s = Standin()
        conn = http.client.HTTPConnection('127.0.0.1', s.ap, timeout=5)
        conn.request('GET', '/')
        self.assertEqual(conn.getresponse().read(), b'It works!')
        conn.close()
        s.proc.stdin.close()
        self.assertEqual(s.proc.wait(10), 0)
        s.proc.stdout.close()


if __name__ == '__main__':
    unittest.main()
