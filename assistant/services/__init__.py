"""One service per feature. Services take components from the container; routers, pages and the CLI are thin."""
