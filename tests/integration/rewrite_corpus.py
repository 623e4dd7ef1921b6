"""The mod_rewrite corpus compared with apache2 (test_rewrite_vs_apache.py): rule sets and the
requests sent to each.

Each ``Group`` is one rule set in one context: "server" (main server level), "vhost" (inside a
<VirtualHost>), "dir" (a <Directory> of its own) or "htaccess" (a .htaccess file in a
directory of its own).  Placeholders: ``@P`` is the group's own URL prefix (and directory
name), ``@D`` the DocumentRoot, ``@R`` the test's root directory (its ``other/o.html`` lies
outside the DocumentRoot).  Every group's directory holds index.html, real.html, f.txt,
empty.txt, run.sh (executable), link.html (a symlink to real.html), s/x.html, s/index.html,
and the shared tree /t/ holds a.html, b.html, c.txt; each file's text is its own path, so a
200's body names the file served.

A request is a path (with its query), or (path, headers), or (method, path, headers).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Group:
    context: str
    rules: str
    requests: list = field(default_factory=list)
    all_mpms: bool = False         # also run on worker and the nginx MPM
    sub: str = ""                  # "dir": the lines of a <Directory> for its s/ subdirectory


G = Group

SERVER = [
    # L, plain rewrite to a URL-path below DocumentRoot
    G("server", r"RewriteRule ^/@P/a$ /t/a.html [L]", ["/@P/a", "/@P/a/", "/@P/b", "/@P/A"], True),
    # back-references and a chain of rules without L
    G("server", r"""RewriteRule ^/@P/(\w+)/(\w+)$ /t/$2.$1
RewriteRule ^/t/a\.html$ /t/b.html""", ["/@P/html/a", "/@P/txt/c", "/@P/html/zz", "/@P/x"], True),
    # NC and its long name
    G("server", r"""RewriteRule ^/@P/nc$ /t/a.html [NC,L]
RewriteRule ^/@P/long$ /t/b.html [nocase,last]""", ["/@P/NC", "/@P/nc", "/@P/LONG", "/@P/Long"]),
    # R with every code form
    G("server", r"""RewriteRule ^/@P/r$ /t/a.html [R]
RewriteRule ^/@P/r301$ /t/a.html [R=301,L]
RewriteRule ^/@P/rperm$ /t/a.html [R=permanent,L]
RewriteRule ^/@P/rtemp$ /t/a.html [redirect=temp,L]
RewriteRule ^/@P/rsee$ /t/a.html [R=seeother,L]
RewriteRule ^/@P/r307$ /t/a.html [R=307,L]
RewriteRule ^/@P/r308$ /t/a.html [R=308,L]
RewriteRule ^/@P/rel$ t/a.html [R,L]
RewriteRule ^/@P/abs$ http://example.com/x/y [L]
RewriteRule ^/@P/absr$ https://example.com:8443/p?q=1 [R=301,L]
RewriteRule ^/@P/r404$ /t/a.html [R=404]
RewriteRule ^/@P/r500$ - [R=500]""",
      ["/@P/r", "/@P/r301", "/@P/rperm", "/@P/rtemp", "/@P/rsee", "/@P/r307", "/@P/r308",
       "/@P/rel", "/@P/abs", "/@P/absr", "/@P/r404", "/@P/r500", "/@P/r?x=1"], True),
    # F and G
    G("server", r"""RewriteRule ^/@P/secret - [F]
RewriteRule ^/@P/old - [G]
RewriteRule ^/@P/forbidden\.html$ /t/a.html [forbidden]
RewriteRule ^/@P/gone/ /t/a.html [gone]""",
      ["/@P/secret", "/@P/secret/x", "/@P/old", "/@P/forbidden.html", "/@P/gone/x", "/@P/other"], True),
    # query strings: "?" replaces, QSA appends, QSD drops, a trailing "?" empties
    G("server", r"""RewriteRule ^/@P/q1$ /@P/show?a=1 [R,L]
RewriteRule ^/@P/q2$ /@P/show?a=1 [R,QSA,L]
RewriteRule ^/@P/q3$ /@P/show [R,QSD,L]
RewriteRule ^/@P/q4$ /@P/show? [R,L]
RewriteRule ^/@P/q5$ /@P/show [R,L]
RewriteRule ^/@P/q6$ /@P/show?b=%{QUERY_STRING} [R,L]
RewriteRule ^/@P/q7$ /@P/show?a=1&b=2 [R,qsappend,L]""",
      ["/@P/q1", "/@P/q1?x=2", "/@P/q2?x=2", "/@P/q2", "/@P/q3?x=2", "/@P/q4?x=2", "/@P/q5?x=2",
       "/@P/q6?x=2", "/@P/q7?c=3", "/@P/q5?x=%20y"], True),
    # NE: no escaping of the redirect target; default escapes
    G("server", r"""RewriteRule ^/@P/ne$ /t/a.html#frag [R,NE,L]
RewriteRule ^/@P/esc$ /t/a.html#frag [R,L]
RewriteRule ^/@P/sp/(.*)$ /t/$1 [R,L]
RewriteRule ^/@P/spne/(.*)$ /t/$1 [R,NE,L]""",
      ["/@P/ne", "/@P/esc", "/@P/sp/a%20b", "/@P/spne/a%20b", "/@P/sp/%C3%A9t%C3%A9", "/@P/sp/a&b=c"], True),
    # B: escape back-references
    G("server", r"""RewriteRule ^/@P/b/(.*)$ /@P/show?v=$1 [B,R,L]
RewriteRule ^/@P/nb/(.*)$ /@P/show?v=$1 [R,L]""",
      ["/@P/b/a%20b", "/@P/b/x&y=z", "/@P/nb/a%20b", "/@P/b/plain_word"]),
    # C: chain; a failing link skips the rest of the chain
    G("server", r"""RewriteRule ^/@P/c/(.*)$ /t/$1 [C]
RewriteRule ^/t/a\.html$ /t/b.html [C]
RewriteRule ^/t/b\.html$ /t/c.txt
RewriteRule ^/@P/d/(.*)$ /t/$1 [chain]
RewriteRule ^/t/zzz$ /t/c.txt""",
      ["/@P/c/a.html", "/@P/c/b.html", "/@P/c/c.txt", "/@P/d/a.html", "/@P/d/zzz"]),
    # S: skip
    G("server", r"""RewriteRule ^/@P/s/a$ - [S=2]
RewriteRule ^/@P/s/(.*)$ /t/b.html [L]
RewriteRule ^/@P/s/(.*)$ /t/c.txt [L]
RewriteRule ^/@P/s/(.*)$ /t/a.html [L]
RewriteRule ^/@P/k/a$ - [skip=1]
RewriteRule ^/@P/k/(.*)$ /t/b.html [L]
RewriteRule ^/@P/k/(.*)$ /t/c.txt [L]""",
      ["/@P/s/a", "/@P/s/b", "/@P/k/a", "/@P/k/b"]),
    # N: again from the top, until nothing changes
    G("server", r"""RewriteRule ^/@P/n/(.*)-(.*)$ /@P/n/$1_$2 [N]
RewriteRule ^/@P/n/a_b_c$ /t/a.html [L]
RewriteRule ^/@P/n/(.*)$ /t/c.txt [L]""",
      ["/@P/n/a-b-c", "/@P/n/a-b", "/@P/n/abc"]),
    # END vs L: the chained redirect-free rules after
    G("server", r"""RewriteRule ^/@P/end$ /t/a.html [END]
RewriteRule ^/@P/l$ /t/b.html [L]
RewriteRule ^/t/a\.html$ /t/c.txt""",
      ["/@P/end", "/@P/l"]),
    # E: environment, observed through Header set X-Env
    G("server", r"""RewriteRule ^/@P/e$ /t/a.html [E=RWENV:fromrule,L]
RewriteRule ^/@P/e2/(\w+)$ /t/b.html [E=RWENV:got-$1,env=OTHER:x,L]
RewriteRule ^/@P/e3$ /t/a.html [E=RWENV:one,E=!RWENV,L]""",
      ["/@P/e", "/@P/e2/abc", "/@P/e3"]),
    # T: forced type
    G("server", r"""RewriteRule ^/@P/t$ /t/c.txt [T=text/html,L]
RewriteRule ^/@P/t2$ /t/a.html [type=application/x-thing,L]""",
      ["/@P/t", "/@P/t2"]),
    # PT: the result handed to Alias
    G("server", r"""RewriteRule ^/@P/pt$ /aliased/o.html [PT,L]
RewriteRule ^/@P/nopt$ /aliased/o.html [L]""",
      ["/@P/pt", "/@P/nopt"]),
    # negated patterns and "-"
    G("server", r"""RewriteCond %{REQUEST_URI} ^/@P/
RewriteRule !^/@P/keep /t/zz [L]
RewriteRule ^/@P/keep/(.*)$ - [E=RWENV:$1]
RewriteRule ^/@P/keep/(.*)$ /t/$1 [L]""",
      ["/@P/keep/a.html", "/@P/keep/b.html", "/@P/other"]),
    # file system paths: the first component exists -> a file path, else below DocumentRoot
    G("server", r"""RewriteRule ^/@P/o$ @R/other/o.html [L]
RewriteRule ^/@P/dr$ @D/t/a.html [L]
RewriteRule ^/@P/nothere$ /nonexistent-top/x [L]
RewriteRule ^/@P/ref/(.*)$ /$1 [L]""",
      ["/@P/o", "/@P/dr", "/@P/nothere", "/@P/ref/t/a.html"]),
    # absolute URL to this server: reduced unless R
    G("server", r"""RewriteRule ^/@P/self$ http://%{HTTP_HOST}/t/a.html [L]
RewriteRule ^/@P/selfr$ http://%{HTTP_HOST}/t/a.html [R,L]
RewriteRule ^/@P/other$ http://other.example/t/a.html [L]""",
      ["/@P/self", "/@P/selfr", "/@P/other"]),
    # trailing-slash and index
    G("server", r"""RewriteRule ^/@P/dir$ /t/ [L]
RewriteRule ^/@P/dir2$ /t [L]""", ["/@P/dir", "/@P/dir2"]),
]

CONDS = [
    # header variables
    G("server", r"""RewriteCond %{HTTP_USER_AGENT} ^Mozilla
RewriteRule ^/@P/ua$ /t/a.html [L]
RewriteCond %{HTTP_REFERER} example\.(com|org)$
RewriteRule ^/@P/ref$ /t/b.html?%1 [R,L]
RewriteCond %{HTTP_COOKIE} (^|;\s*)lang=(\w+)
RewriteRule ^/@P/ck$ /@P/show?lang=%2 [R,L]
RewriteCond %{HTTP:X-Test} ^yes$ [NC]
RewriteRule ^/@P/hx$ /t/c.txt [L]
RewriteRule ^/@P/(ua|ref|ck|hx)$ /t/zz [L]""",
      [("/@P/ua", {"User-Agent": "Mozilla/5.0"}), ("/@P/ua", {"User-Agent": "curl"}),
       ("/@P/ref", {"Referer": "http://www.example.org"}), ("/@P/ref", {"Referer": "http://x.net"}),
       ("/@P/ck", {"Cookie": "a=1; lang=fr"}), ("/@P/ck", {"Cookie": "a=1"}),
       ("/@P/hx", {"X-Test": "YES"}), ("/@P/hx", {"X-Test": "no"}), "/@P/hx"], True),
    # host based redirects (www and canonical host)
    G("server", r"""RewriteCond %{HTTP_HOST} ^www\.(.+)$ [NC]
RewriteRule ^/@P/(.*)$ http://%1/@P/$1 [R=301,L]
RewriteCond %{HTTP_HOST} !^canon\.test [NC]
RewriteCond %{HTTP_HOST} !^$
RewriteRule ^/@P/(.*)$ http://canon.test/@P/$1 [R=302,L]""",
      [("/@P/page", {"Host": "www.site.test"}), ("/@P/page?x=1", {"Host": "WWW.site.test:8080"}),
       ("/@P/page", {"Host": "canon.test"}), ("/@P/p/q", {"Host": "other.test"})], True),
    # HTTPS, REQUEST_SCHEME, SERVER_PORT, SERVER_NAME
    G("server", r"""RewriteCond %{HTTPS} off
RewriteRule ^/@P/secure$ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]
RewriteCond %{REQUEST_SCHEME} =http
RewriteRule ^/@P/scheme$ /t/a.html [L]
RewriteCond %{SERVER_PORT} -gt1024
RewriteRule ^/@P/port$ /t/b.html [L]
RewriteCond %{SERVER_NAME} ^sn\.test$
RewriteRule ^/@P/sn$ /t/c.txt [L]""",
      ["/@P/secure", "/@P/secure?a=b", "/@P/scheme", "/@P/port", ("/@P/sn", {"Host": "sn.test"}),
       "/@P/sn"]),
    # REQUEST_URI, REQUEST_METHOD, QUERY_STRING, THE_REQUEST
    G("server", r"""RewriteCond %{REQUEST_URI} ^/@P/u/(\d+)$
RewriteRule ^ /@P/show?id=%1 [R,L]
RewriteCond %{REQUEST_METHOD} =HEAD
RewriteRule ^/@P/m$ /t/b.html [L]
RewriteCond %{QUERY_STRING} (^|&)id=(\d+)(&|$)
RewriteRule ^/@P/qs$ /@P/item/%2? [R=301,L]
RewriteCond %{THE_REQUEST} \s/@P/tr\.html[?\s]
RewriteRule ^/@P/tr\.html$ /@P/tr [R=301,L]
RewriteRule ^/@P/(m|qs|tr)$ /t/c.txt [L]""",
      ["/@P/u/12", "/@P/u/ab", "/@P/m", ("HEAD", "/@P/m", {}), "/@P/qs?id=7", "/@P/qs?x=1&id=8&y",
       "/@P/qs?id=x", "/@P/tr.html", "/@P/tr.html?z=1", "/@P/tr"], True),
    # REMOTE_ADDR, REMOTE_HOST, DOCUMENT_ROOT, ENV, IS_SUBREQ, API_VERSION, TIME
    G("server", r"""RewriteCond %{REMOTE_ADDR} ^127\.0\.0\.1$
RewriteRule ^/@P/ra$ /t/a.html [L]
RewriteCond %{REMOTE_HOST} ^127\.
RewriteRule ^/@P/rh$ /t/b.html [L]
RewriteCond %{DOCUMENT_ROOT}/t/a.html -f
RewriteRule ^/@P/docroot$ /t/c.txt [L]
RewriteCond %{ENV:RWTEST} =set-by-setenv
RewriteRule ^/@P/env$ /t/a.html [L]
RewriteCond %{IS_SUBREQ} =false
RewriteRule ^/@P/sub$ /t/b.html [L]
RewriteCond %{API_VERSION} ^20120211:
RewriteRule ^/@P/api$ /t/c.txt [L]
RewriteCond %{TIME_YEAR} ^2\d\d\d$
RewriteCond %{TIME_MON} ^[01]\d$
RewriteCond %{TIME_WDAY} ^[0-6]$
RewriteCond %{TIME} ^\d{14}$
RewriteRule ^/@P/time$ /t/a.html [L]
RewriteRule ^/@P/ ht/zz [L]""",
      ["/@P/ra", "/@P/rh", "/@P/docroot", "/@P/env", "/@P/sub", "/@P/api", "/@P/time"]),
    # string comparisons
    G("server", r"""RewriteCond %{QUERY_STRING} =abc
RewriteRule ^/@P/eq$ /t/a.html [L]
RewriteCond %{QUERY_STRING} ="" 
RewriteRule ^/@P/empty$ /t/a.html [L]
RewriteCond %{QUERY_STRING} <m
RewriteRule ^/@P/lt$ /t/a.html [L]
RewriteCond %{QUERY_STRING} >m
RewriteRule ^/@P/gt$ /t/a.html [L]
RewriteCond %{QUERY_STRING} <=bb
RewriteRule ^/@P/le$ /t/a.html [L]
RewriteCond %{QUERY_STRING} >=bb
RewriteRule ^/@P/ge$ /t/a.html [L]
RewriteCond %{QUERY_STRING} =ABC [NC]
RewriteRule ^/@P/eqnc$ /t/a.html [L]
RewriteRule ^/@P/ /t/c.txt [L]""",
      ["/@P/eq?abc", "/@P/eq?abd", "/@P/empty", "/@P/empty?x", "/@P/lt?a", "/@P/lt?z",
       "/@P/lt?zz", "/@P/gt?z", "/@P/gt?a", "/@P/gt?aa", "/@P/le?bb", "/@P/le?bc", "/@P/ge?bb",
       "/@P/ge?ba", "/@P/eqnc?aBc", "/@P/eqnc?abd"]),
    # integer comparisons
    G("server", r"""RewriteCond %{QUERY_STRING} -eq5
RewriteRule ^/@P/ieq$ /t/a.html [L]
RewriteCond %{QUERY_STRING} -ne5
RewriteRule ^/@P/ine$ /t/a.html [L]
RewriteCond %{QUERY_STRING} -lt5
RewriteRule ^/@P/ilt$ /t/a.html [L]
RewriteCond %{QUERY_STRING} -le5
RewriteRule ^/@P/ile$ /t/a.html [L]
RewriteCond %{QUERY_STRING} -gt5
RewriteRule ^/@P/igt$ /t/a.html [L]
RewriteCond %{QUERY_STRING} -ge5
RewriteRule ^/@P/ige$ /t/a.html [L]
RewriteRule ^/@P/ /t/c.txt [L]""",
      ["/@P/ieq?5", "/@P/ieq?05", "/@P/ieq?6", "/@P/ine?5", "/@P/ine?4", "/@P/ilt?4",
       "/@P/ilt?5", "/@P/ile?5", "/@P/igt?10", "/@P/igt?5", "/@P/ige?5", "/@P/ige?x"]),
    # file tests
    G("server", r"""RewriteCond %{DOCUMENT_ROOT}/@P%{REQUEST_URI} -f
RewriteRule ^/@P/fx/ /t/a.html [L]
RewriteCond @D/@P/$1 -f
RewriteRule ^/@P/f/(.*)$ /t/a.html [L]
RewriteCond @D/@P/$1 -F
RewriteRule ^/@P/F/(.*)$ /t/a.html [L]
RewriteCond @D/@P/$1 -d
RewriteRule ^/@P/d/(.*)$ /t/b.html [L]
RewriteCond @D/@P/$1 -s
RewriteRule ^/@P/size/(.*)$ /t/c.txt [L]
RewriteCond @D/@P/$1 -l
RewriteRule ^/@P/l/(.*)$ /t/a.html [L]
RewriteCond @D/@P/$1 -L
RewriteRule ^/@P/L/(.*)$ /t/a.html [L]
RewriteCond @D/@P/$1 -x
RewriteRule ^/@P/x/(.*)$ /t/b.html [L]
RewriteCond @D/@P/$1 !-f
RewriteRule ^/@P/nf/(.*)$ /t/c.txt [L]
RewriteRule ^/@P/ /t/zz [L]""",
      ["/@P/f/real.html", "/@P/f/nope.html", "/@P/f/s", "/@P/F/real.html", "/@P/F/nope",
       "/@P/d/s", "/@P/d/real.html", "/@P/size/f.txt", "/@P/size/empty.txt", "/@P/l/link.html",
       "/@P/l/real.html", "/@P/L/link.html", "/@P/x/run.sh", "/@P/x/f.txt", "/@P/nf/real.html",
       "/@P/nf/none"], True),
    # OR, NC on conditions, negation, %N from the last matched condition
    G("server", r"""RewriteCond %{QUERY_STRING} ^a=(\d+) [OR]
RewriteCond %{QUERY_STRING} ^b=(\w+)
RewriteRule ^/@P/or$ /@P/show?got=%1 [R,L]
RewriteCond %{QUERY_STRING} ^X=(\w+)$ [NC,ornext]
RewriteCond %{HTTP:X-Never} ^never$
RewriteRule ^/@P/or2$ /@P/show?got=%1 [R,L]
RewriteCond %{QUERY_STRING} !^skip
RewriteCond %{QUERY_STRING} (.+)
RewriteRule ^/@P/neg$ /@P/show?q=%1 [R,L]
RewriteRule ^/@P/ /t/c.txt [L]""",
      ["/@P/or?a=12", "/@P/or?b=word", "/@P/or?c=1", "/@P/or2?x=hello", "/@P/or2?y=1",
       "/@P/neg?skipme", "/@P/neg?keep", "/@P/neg"], True),
    # $N and %N together, %{...} inside the substitution
    G("server", r"""RewriteCond %{QUERY_STRING} ^v=(\w+)$
RewriteRule ^/@P/(\w+)$ /@P/show?rule=$1&cond=%1&uri=%{REQUEST_URI} [R,L]""",
      ["/@P/word?v=val", "/@P/word?v=", "/@P/w2?v=x"]),
    # backslash escapes and literal $ and %
    G("server", r"""RewriteRule ^/@P/lit$ /@P/show?a=\$1&b=\%1&c=50%&d=$ [R,L]""", ["/@P/lit"]),
]

EDGES = [
    # E= then a later condition on ENV; END in server context; QSL; NS
    G("server", r"""RewriteRule ^/@P/e/(\w+)$ - [E=RWENV:$1]
RewriteCond %{ENV:RWENV} =yes
RewriteRule ^/@P/e/ /t/a.html [L]
RewriteRule ^/@P/e/ /t/b.html [L]
RewriteRule ^/@P/qsl/(.*)$ /@P/show/$1 [QSL,R,L]
RewriteRule ^/@P/ns$ /t/c.txt [NS,L]
RewriteRule ^/@P/endr$ /t/a.html [END,R]""",
      ["/@P/e/yes", "/@P/e/no", "/@P/qsl/a%3Fb", "/@P/ns", "/@P/endr"]),
    # an encoded "?" in the request and a "?" in the result: 403 unless UnsafeAllow3F
    G("server", r"""RewriteRule ^/@P/u3f/(.*)$ /@P/show?v=$1 [R,L]
RewriteRule ^/@P/a3f/(.*)$ /@P/show?v=$1 [R,UnsafeAllow3F,L]
RewriteRule ^/@P/n3f/(.*)$ /t/$1 [R,L]""",
      ["/@P/u3f/x%3Fy", "/@P/u3f/plain", "/@P/a3f/x%3fy", "/@P/n3f/x%3Fy"]),
    # a back-reference as the first segment: below DocumentRoot unless UnsafePrefixStat
    G("server", r"""RewriteRule ^/@P/bref/(.*)$ /$1 [L]
RewriteRule ^/@P/var$ %{DOCUMENT_ROOT}/t/a.html [L]
RewriteRule ^/@P/unsafe/(.*)$ /$1 [UnsafePrefixStat,L]""",
      ["/@P/bref/t/a.html", "/@P/var", "/@P/unsafe/t/a.html", "/@P/bref/tmp"]),
    # expr conditions, ap_expr style
    G("server", r"""RewriteCond expr "%{QUERY_STRING} =~ /^k=(\d+)$/"
RewriteRule ^/@P/expr$ /t/a.html [L]
RewriteCond expr "-f '%{DOCUMENT_ROOT}/t/b.html'"
RewriteRule ^/@P/exprf$ /t/b.html [L]
RewriteRule ^/@P/ /t/c.txt [L]""",
      ["/@P/expr?k=12", "/@P/expr?k=x", "/@P/exprf"]),
    # the usual https and canonical-host lines of real sites
    G("server", r"""RewriteCond %{HTTPS} !=on
RewriteCond %{REQUEST_URI} ^/@P/
RewriteRule ^/?(.*) https://%{SERVER_NAME}/$1 [R=301,L,NE]""",
      ["/@P/x?y=1", ("/@P/a%20b", {"Host": "site.test"})]),
    # S skipping over a chain, C with L
    G("server", r"""RewriteRule ^/@P/sc$ - [S=1]
RewriteRule ^/@P/(.*)$ /t/b.html [C]
RewriteRule ^/t/b\.html$ /t/c.txt [L]
RewriteRule ^/@P/sc$ /t/a.html [L]""", ["/@P/sc", "/@P/other"]),
    # NC on the string comparisons; !-d, !-s; a negated regex keeps no %N
    G("server", r"""RewriteCond %{QUERY_STRING} <M [NC]
RewriteRule ^/@P/ltnc$ /t/a.html [L]
RewriteCond @D/@P/$1 !-d
RewriteCond @D/@P/$1 !-s
RewriteRule ^/@P/ds/(.*)$ /t/b.html [L]
RewriteCond %{QUERY_STRING} (\w+)
RewriteCond %{QUERY_STRING} !^z(\w+)
RewriteRule ^/@P/negref$ /@P/show?got=%1 [R,L]
RewriteRule ^/@P/ /t/c.txt [L]""",
      ["/@P/ltnc?a", "/@P/ltnc?z", "/@P/ds/s", "/@P/ds/empty.txt", "/@P/ds/none",
       "/@P/negref?abc"]),
    # redirects with special characters, and absolute results with ports and queries
    G("server", r"""RewriteRule ^/@P/p/(.*)$ http://example.com:8080/$1 [R=301,L]
RewriteRule ^/@P/sq$ /t/a.html?x=a%20b&y=%{QUERY_STRING} [R,L]""",
      ["/@P/p/a%20b/c", "/@P/p/%7Euser", "/@P/p/a+b", "/@P/sq?q=1%202"]),
]

MAPS = [
    G("server", r"""RewriteRule ^/@P/txt/(\w+)$ /t/${tmap:$1|c.txt} [L]
RewriteRule ^/@P/up/(\w+)$ /@P/show?v=${up:$1} [R,L]
RewriteRule ^/@P/low/(\w+)$ /@P/show?v=${low:$1} [R,L]
RewriteRule ^/@P/esc/(.*)$ /@P/show?v=${esc:$1} [R,NE,L]
RewriteRule ^/@P/unesc/(.*)$ /@P/show?v=${unesc:$1} [R,L]
RewriteRule ^/@P/rnd$ /t/${rmap:one} [L]
RewriteRule ^/@P/nomap/(\w+)$ /t/${tmap:$1} [L]
RewriteRule ^/@P/nested/(\w+)$ /t/${tmap:${low:$1}|b.html} [L]""",
      ["/@P/txt/first", "/@P/txt/second", "/@P/txt/missing", "/@P/up/abc", "/@P/low/ABC",
       "/@P/esc/a%20b", "/@P/unesc/a%2541", "/@P/rnd", "/@P/nomap/first", "/@P/nomap/zz",
       "/@P/nested/FIRST", "/@P/nested/NONE"], True),
]

VHOST = [
    G("vhost", r"RewriteRule ^/@P/a$ /t/a.html [L]", ["/@P/a", "/@P/b"], True),
    G("vhost", r"""RewriteCond %{HTTP_HOST} ^www\. [NC]
RewriteRule ^/@P/(.*)$ http://vh.test/@P/$1 [R=301,L]
RewriteRule ^/@P/r/(.*)$ /@P/x/$1 [R,L]""",
      [("/@P/p", {"Host": "www.vh.test"}), "/@P/r/z", ("/@P/r/z?q=1", {"Host": "vh.test"})], True),
    G("vhost", r"""RewriteRule ^/@P/m/(\w+)$ /t/${vmap:$1|c.txt} [L]
RewriteRule ^/@P/f$ - [F]""", ["/@P/m/first", "/@P/m/zz", "/@P/f"]),
    G("vhost", r"""RewriteCond %{QUERY_STRING} (^|&)p=(\d+)
RewriteRule ^/@P/page$ /@P/page/%2? [R=301,L]
RewriteRule ^/@P/page/(\d+)$ /t/a.html [E=RWENV:page$1,L]""",
      ["/@P/page?p=3", "/@P/page?x=1", "/@P/page/4"]),
]

DIR = [
    # relative substitution gets the directory's prefix back; internal redirect
    G("dir", r"""RewriteEngine On
RewriteRule ^alias\.html$ real.html [L]
RewriteRule ^up$ /t/a.html [L]
RewriteRule ^s/(\w+)$ s/$1.html [L]""",
      ["/@P/alias.html", "/@P/real.html", "/@P/up", "/@P/s/x", "/@P/s/y", "/@P/"], True),
    # the front controller pattern (WordPress-like)
    G("dir", r"""RewriteEngine On
RewriteRule ^index\.html$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . index.html [L]""",
      ["/@P/anything", "/@P/deep/er/path", "/@P/real.html", "/@P/s/", "/@P/s", "/@P/f.txt",
       "/@P/x?q=1"], True),
    # RewriteBase
    G("dir", r"""RewriteEngine On
RewriteBase /@P/
RewriteRule ^b/(\w+)$ s/$1.html [L]
RewriteRule ^rb/(\w+)$ s/$1.html [R,L]
RewriteRule ^rbabs/(\w+)$ /@P/s/$1.html [R,L]""",
      ["/@P/b/x", "/@P/rb/x", "/@P/rbabs/x", "/@P/b/none"], True),
    # flags per directory: F, G, R, QSA, QSD, NC, E, END
    G("dir", r"""RewriteEngine On
RewriteRule ^secret - [F]
RewriteRule ^gone - [G]
RewriteRule ^red$ real.html [R=301,L]
RewriteRule ^qsa$ real.html?a=1 [QSA,R,L]
RewriteRule ^qsd$ real.html [QSD,R,L]
RewriteRule ^NC$ real.html [NC,L]
RewriteRule ^env$ real.html [E=RWENV:dir,L]
RewriteRule ^end$ s/x.html [END]""",
      ["/@P/secret", "/@P/gone", "/@P/red", "/@P/red?k=v", "/@P/qsa?b=2", "/@P/qsd?b=2",
       "/@P/nc", "/@P/env", "/@P/end"], True),
    # a loop ends in a 500 (LimitInternalRecursion), as httpd
    G("dir", r"""RewriteEngine On
RewriteRule ^loop(\d*)$ loop$1x""", ["/@P/loop"]),
    # the directory itself without its slash is left to mod_dir
    G("dir", r"""RewriteEngine On
RewriteRule ^$ real.html [L]""", ["/@P", "/@P/"]),
    # conditions with per-dir back-references
    G("dir", r"""RewriteEngine On
RewriteCond %{QUERY_STRING} ^id=(\d+)$
RewriteRule ^item$ s/x.html?item=%1 [L]
RewriteCond $1 !^(real|index)
RewriteRule ^(\w+)\.html$ real.html [R,L]""",
      ["/@P/item?id=3", "/@P/item?id=x", "/@P/other.html", "/@P/real.html"], True),
    # a query in an internal redirect reaches the next round
    G("dir", r"""RewriteEngine On
RewriteCond %{QUERY_STRING} ^step=2$
RewriteRule ^go$ real.html [L]
RewriteRule ^go$ go?step=2 [L]""", ["/@P/go", "/@P/go?step=1"]),
    # RewriteEngine Off inside the section
    G("dir", r"""RewriteEngine Off
RewriteRule ^.*$ real.html [L]""", ["/@P/f.txt", "/@P/nope"]),
    # N per directory and C
    G("dir", r"""RewriteEngine On
RewriteRule ^n/(.*)_(.*)$ n/$1-$2 [N]
RewriteRule ^n/a-b-c$ real.html [L]
RewriteRule ^c/(.*)$ $1 [C]
RewriteRule ^f\.txt$ real.html [L]""", ["/@P/n/a_b_c", "/@P/c/f.txt", "/@P/c/index.html"]),
    # a <Directory> without a RewriteEngine line of its own: on from the server level
    G("dir", r"""RewriteRule ^f\.txt$ real.html [L]""", ["/@P/f.txt", "/@P/real.html"]),
    # a subdirectory's rules replace the parent's ...
    G("dir", r"""RewriteEngine On
RewriteRule ^s/none$ real.html [L]
RewriteRule ^f\.txt$ real.html [L]""", ["/@P/s/none", "/@P/s/x.html", "/@P/f.txt"],
      sub=r"""RewriteRule ^x\.html$ index.html [L]"""),
    # ... unless it says Inherit (its own first) or InheritBefore (the parent's first)
    G("dir", r"""RewriteEngine On
RewriteRule ^(s/)?none$ real.html [L]
RewriteRule x\.html$ f.txt [L]""", ["/@P/s/none", "/@P/s/x.html", "/@P/none"],
      sub=r"""RewriteOptions Inherit
RewriteRule ^x\.html$ index.html [L]"""),
    G("dir", r"""RewriteEngine On
RewriteRule x\.html$ f.txt [L]""", ["/@P/s/x.html", "/@P/x.html"],
      sub=r"""RewriteOptions InheritBefore
RewriteRule ^x\.html$ index.html [L]"""),
    # a subdirectory turning the engine off
    G("dir", r"""RewriteEngine On
RewriteRule ^(.*)\.htm$ $1.html [L]""", ["/@P/real.htm", "/@P/s/x.htm"],
      sub="RewriteEngine Off"),
    # DPI drops the path info; without it the path info is kept on the rewritten name
    G("dir", r"""RewriteEngine On
RewriteRule ^real\.html/(.*)$ index.html [DPI,L]
RewriteRule ^f\.txt/(.*)$ index.html [L]""", ["/@P/real.html/more", "/@P/f.txt/more"]),
    # AllowNoSlash: the directory itself without its slash reaches the rules
    G("dir", r"""RewriteEngine On
RewriteOptions AllowNoSlash
RewriteRule ^s$ real.html [L]""", ["/@P/s", "/@P/s/"]),
    # per-directory variables: REQUEST_FILENAME is the file name without path info, ENV
    G("dir", r"""RewriteEngine On
RewriteCond %{REQUEST_FILENAME} -f
RewriteRule ^real\.html/ f.txt [L]
RewriteCond %{ENV:RWTEST} ^$
RewriteRule ^envcheck$ real.html [L]
RewriteCond %{REQUEST_URI} ^/@P/uri$
RewriteCond %{SCRIPT_FILENAME} /@P/uri$
RewriteRule ^uri$ f.txt [L]""", ["/@P/real.html/x", "/@P/envcheck", "/@P/uri"]),
]

# .htaccess files (AllowOverride FileInfo): the same rules as in <Directory> sections
HTACCESS = [
    G("htaccess", r"""RewriteEngine On
RewriteRule ^index\.html$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . index.html [L]""",
      ["/@P/anything", "/@P/deep/er/path", "/@P/real.html", "/@P/s/", "/@P/s", "/@P/x?q=1",
       "/@P/real.html/more"], True),
    G("htaccess", r"""RewriteEngine On
RewriteBase /@P/
RewriteRule ^b/(\w+)$ s/$1.html [L]
RewriteRule ^rb/(\w+)$ s/$1.html [R=301,L]
RewriteRule ^secret - [F]
RewriteRule ^gone - [G]
RewriteRule ^qsa$ real.html?a=1 [QSA,R,L]
RewriteRule ^env$ real.html [E=RWENV:ht,L]
RewriteCond %{HTTP_USER_AGENT} bot [NC]
RewriteRule ^ua$ f.txt [L]""",
      ["/@P/b/x", "/@P/rb/x", "/@P/secret", "/@P/gone", "/@P/qsa?b=2", "/@P/env",
       ("/@P/ua", {"User-Agent": "GoogleBot"}), ("/@P/ua", {"User-Agent": "human"})], True),
    # a .htaccess below another: replaces its rules, or inherits them
    G("htaccess", r"""RewriteEngine On
RewriteRule ^(s/)?none$ real.html [L]
RewriteRule x\.html$ f.txt [L]""", ["/@P/s/none", "/@P/s/x.html", "/@P/none"],
      sub=r"""RewriteRule ^x\.html$ index.html [L]"""),
    G("htaccess", r"""RewriteEngine On
RewriteRule ^(s/)?none$ real.html [L]
RewriteRule x\.html$ f.txt [L]""", ["/@P/s/none", "/@P/s/x.html", "/@P/none"],
      sub=r"""RewriteOptions Inherit
RewriteRule ^x\.html$ index.html [L]"""),
    # Drupal 7 / CodeIgniter style: the path into the query, QSA; a map used per directory
    G("htaccess", r"""RewriteEngine On
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteCond %{REQUEST_URI} !=/favicon.ico
RewriteRule ^up/(\w+)$ index.html?u=${up:$1} [L,QSA]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule ^(.*)$ index.html?q=$1 [L,QSA]""",
      ["/@P/node/12", "/@P/node/12?page=2", "/@P/up/abc", "/@P/real.html", "/@P/s/"], True),
    G("htaccess", r"""RewriteEngine On
RewriteRule ^loop(\d*)$ loop$1x
RewriteRule ^(.*)\.htm$ $1.html [R=302,L]""", ["/@P/loop", "/@P/real.htm", "/@P/s/x.htm"]),
]

# a second <VirtualHost> with RewriteOptions Inherit: its own rules, then the main server's
# (which match only their own groups' prefixes: s0 is the first SERVER group's)
INHERIT = [
    G("inherit", r"""RewriteRule ^/@P/own$ /t/b.html [L]
RewriteRule ^/s0/a$ /t/c.txt [L]""", ["/@P/own", "/s0/a", "/s2/nc", "/@P/m/first"]),
]


def groups() -> list[Group]:
    return SERVER + CONDS + MAPS + VHOST + DIR + INHERIT + HTACCESS + EDGES


def size() -> int:
    return sum(len(g.requests) for g in groups())
