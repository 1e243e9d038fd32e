"""Server-rendered pages, one module per room: log-in, the review queue, search and golden records, "why not?",
the cluster view of a golden record.

Reading needs any role; deciding, splitting and merging need ``steward``
(or ``admin``). Every POST carries the session's CSRF token. After a POST
the browser is redirected (303), so a reload never decides twice.
"""

from fastapi import APIRouter

from steward.routes import audit, cluster, golden, login, queue, why

router = APIRouter(include_in_schema=False)
for module in (login, queue, golden, why, cluster, audit):
    router.include_router(module.router)
