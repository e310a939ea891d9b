"""Genshi mail templates, parsed once and kept while their file is unchanged.

A template is looked up first in the environment's ``templates/`` folder
(an administrator's override), then in the plugin's own.  The loaders are
shared by every render of the process: Genshi's ``auto_reload`` re-reads a
file whose modification time changed, and the folder that holds the file
is part of the cache key, so an override dropped in (or removed) while
Trac runs is used from the next mail on, as when every render parsed the
template again.
"""

import os
import threading
from typing import Dict, Tuple, Type

from genshi.template import Template, TemplateLoader

#: the plugin's own templates
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'templates')

_loaders: Dict[Tuple[Tuple[str, ...], str], TemplateLoader] = {}
_lock = threading.Lock()


def _loader(search: Tuple[str, ...], holder: str) -> TemplateLoader:
    key = (search, holder)
    loader = _loaders.get(key)
    if loader is None:
        with _lock:
            loader = _loaders.get(key)
            if loader is None:
                loader = TemplateLoader(list(search), auto_reload=True)
                _loaders[key] = loader
    return loader


def load_template(env_templates_dir: str, name: str,
                  cls: Type[Template]) -> Template:
    """The template *name* (``mail/...``): the environment's override if
    there is one, else the plugin's; parsed once while it is unchanged."""
    search = tuple(d for d in (env_templates_dir, TEMPLATE_DIR)
                   if d and os.path.isdir(d))
    holder = next((d for d in search if os.path.isfile(os.path.join(d, name))),
                  '')
    return _loader(search, holder).load(name, cls=cls, encoding='utf-8')
