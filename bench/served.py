"""Shared by bench/web.py and bench/enumeration.py: whether a served
instance is ready, and the CSRF token of one of its forms."""

import http.client
import re


def ready(port):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def csrf_form(opener, url):
    page = opener.open(url).read().decode()
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
