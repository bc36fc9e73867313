"""Endpoints: named notification targets shared by watches (``/api/v1/endpoints``, the dashboard's
Endpoints pages and ``mi-bridge endpoint``): validation, the actions on them, and their health."""
