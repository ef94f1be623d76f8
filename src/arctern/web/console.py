"""Developer console pages: projects, app registration, client ids and one-time secrets."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from arctern.auth import registry
from arctern.auth.scopes import describe
from arctern.context import AppContext
from arctern.db.models.auth import Identity, OAuthClient, Project
from arctern.errors import ArcternError, NotFound
from arctern.web.forms import KNOWN_SCOPES, clean_app, clean_project
from arctern.web.pages import Pages

# Where an earlier version carried a new secret (encrypted) to the next page inside the
# session cookie; dropped from any cookie that still holds it.
_LEGACY_SECRET_KEY = "web_new_secret"


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def create_console_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/developers")
    native_redirect = f"{ctx.settings.auth_url}v2/web/auth-code"
    scope_rows = [(name, describe(name)) for name in KNOWN_SCOPES]

    def render(request: Request, template: str, user: Identity, **context: Any) -> HTMLResponse:
        return pages.render(request, template, user=user, active_nav="developers", **context)

    async def load_project(user: Identity, project_id: str) -> tuple[Project, list[OAuthClient]]:
        pid = _uuid(project_id)
        if pid is None:
            raise NotFound("No such project")
        async with ctx.db.session() as session:
            project = await registry.project_for_admin(session, pid, user.id)
            clients = await registry.list_clients(session, pid)
        return project, clients

    async def load_app(
        user: Identity, project_id: str, client_id: str
    ) -> tuple[Project, OAuthClient, int]:
        pid, cid = _uuid(project_id), _uuid(client_id)
        if pid is None or cid is None:
            raise NotFound("No such app")
        async with ctx.db.session() as session:
            project = await registry.project_for_admin(session, pid, user.id)
            client = await registry.client_for_admin(session, cid, user.id)
            if client.project_id != project.id:
                raise NotFound("No such app")
            credentials = await registry.list_credentials(session, cid)
        return project, client, len(credentials)

    @router.get("", response_class=HTMLResponse)
    async def console_home(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        async with ctx.db.session() as session:
            projects = await registry.list_projects(session, user.id)
            apps = {p.id: await registry.list_clients(session, p.id) for p in projects}
        return render(request, "developers/home.html", user, projects=projects, apps=apps)

    @router.get("/projects/new", response_class=HTMLResponse)
    async def new_project(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        values = {"name": "", "email": user.email or user.username}
        return render(request, "developers/project_form.html", user, values=values, errors={})

    @router.post("/projects", response_class=HTMLResponse)
    async def create_project(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        result = clean_project(str(form.get("name", "")), str(form.get("email", "")))
        if not result.ok:
            return pages.render(
                request,
                "developers/project_form.html",
                user=user,
                active_nav="developers",
                status_code=400,
                values=result.values,
                errors=result.errors,
            )
        async with ctx.db.session() as session:
            project = await registry.create_project(
                session,
                ctx.clock.now(),
                display_name=str(result.values["name"]),
                contact_email=str(result.values["email"]),
                admin_ids=[user.id],
            )
        pages.flash(request, f"Project “{project.display_name}” created. Now add an app to it.")
        return pages.redirect(f"/developers/projects/{project.id}")

    @router.get("/projects/{project_id}", response_class=HTMLResponse)
    async def show_project(request: Request, project_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        try:
            project, clients = await load_project(user, project_id)
        except NotFound:
            return pages.not_found(request, user, "Project")
        return render(request, "developers/project.html", user, project=project, apps=clients)

    @router.post("/projects/{project_id}/delete", response_class=HTMLResponse)
    async def delete_project(request: Request, project_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _form = posted
        pid = _uuid(project_id)
        try:
            if pid is None:
                raise NotFound("No such project")
            async with ctx.db.session() as session:
                project = await registry.project_for_admin(session, pid, user.id)
                name = project.display_name
                await registry.delete_project(session, project)
        except NotFound:
            return pages.not_found(request, user, "Project")
        pages.flash(request, f"Project “{name}” and its apps were deleted.")
        return pages.redirect("/developers")

    def app_form(
        request: Request,
        user: Identity,
        project: Project,
        values: dict[str, object],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> HTMLResponse:
        return pages.render(
            request,
            "developers/app_form.html",
            user=user,
            active_nav="developers",
            status_code=status_code,
            project=project,
            values=values,
            errors=errors,
            scopes=scope_rows,
            native_redirect=native_redirect,
        )

    def app_page(
        request: Request,
        user: Identity,
        project: Project,
        client: OAuthClient,
        credential_count: int,
        *,
        new_secret: str | None = None,
        notice: str | None = None,
    ) -> HTMLResponse:
        """The app's page; with ``new_secret`` it is the answer to the POST that made the
        secret. The secret goes into this one response body and nowhere else: not into the
        session cookie (which the browser stores and proxies log, and which would show it
        again when replayed), not into a redirect URL. ``no_store`` keeps it out of caches;
        ``app_url`` lets the page's script swap the POST out of the history, so reloading
        or coming back shows the app without the secret."""
        return pages.render(
            request,
            "developers/app.html",
            user=user,
            active_nav="developers",
            no_store=True,
            project=project,
            app=client,
            native=client.is_public,
            new_secret=new_secret,
            notice=notice,
            app_url=f"/developers/projects/{project.id}/apps/{client.id}",
            credential_count=credential_count,
            scopes=scope_rows,
        )

    @router.get("/projects/{project_id}/apps/new", response_class=HTMLResponse)
    async def new_app(request: Request, project_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        try:
            project, _ = await load_project(user, project_id)
        except NotFound:
            return pages.not_found(request, user, "Project")
        values: dict[str, object] = {
            "name": "",
            "app_type": "native",
            "redirect_text": native_redirect,
        }
        return app_form(request, user, project, values, {})

    @router.post("/projects/{project_id}/apps", response_class=HTMLResponse)
    async def create_app(request: Request, project_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        try:
            project, _ = await load_project(user, project_id)
        except NotFound:
            return pages.not_found(request, user, "Project")
        result = clean_app(
            str(form.get("name", "")),
            str(form.get("app_type", "")),
            str(form.get("redirect_uris", "")),
        )
        if not result.ok:
            return app_form(request, user, project, result.values, result.errors, 400)
        native = result.values["app_type"] == "native"
        uris = result.values["redirect_uris"]
        assert isinstance(uris, list)
        try:
            async with ctx.db.session() as session:
                client, secret = await registry.create_client(
                    session,
                    ctx.clock.now(),
                    name=str(result.values["name"]),
                    public_client=native,
                    redirect_uris=[str(u) for u in uris],
                    project_id=project.id,
                    owner_id=user.id,
                )
        except ArcternError as exc:
            return app_form(
                request, user, project, result.values, {"redirect_uris": exc.message}, 400
            )
        registered = f"App “{client.name}” registered."
        if secret is not None:
            try:
                project, client, count = await load_app(user, str(project.id), str(client.id))
            except NotFound:  # deleted in the meantime: nobody can use the secret
                return pages.not_found(request, user, "App")
            return app_page(
                request, user, project, client, count, new_secret=secret, notice=registered
            )
        pages.flash(request, registered)
        return pages.redirect(f"/developers/projects/{project.id}/apps/{client.id}")

    @router.get("/projects/{project_id}/apps/{client_id}", response_class=HTMLResponse)
    async def show_app(request: Request, project_id: str, client_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        try:
            project, client, credential_count = await load_app(user, project_id, client_id)
        except NotFound:
            return pages.not_found(request, user, "App")
        request.session.pop(_LEGACY_SECRET_KEY, None)
        return app_page(request, user, project, client, credential_count)

    @router.post("/projects/{project_id}/apps/{client_id}/delete", response_class=HTMLResponse)
    async def delete_app(request: Request, project_id: str, client_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _form = posted
        try:
            project, client, _ = await load_app(user, project_id, client_id)
            async with ctx.db.session() as session:
                row = await registry.client_for_admin(session, client.id, user.id)
                await registry.delete_client(session, row)
        except NotFound:
            return pages.not_found(request, user, "App")
        pages.flash(request, f"App “{client.name}” deleted; its Client ID no longer works.")
        return pages.redirect(f"/developers/projects/{project.id}")

    @router.post("/projects/{project_id}/apps/{client_id}/secrets", response_class=HTMLResponse)
    async def new_secret(request: Request, project_id: str, client_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        try:
            project, client, _ = await load_app(user, project_id, client_id)
            async with ctx.db.session() as session:
                row = await registry.client_for_admin(session, client.id, user.id)
                _, secret = await registry.create_credential(
                    session, ctx.clock.now(), row, name=str(form.get("label", "")).strip()
                )
            project, client, count = await load_app(user, project_id, client_id)
        except NotFound:
            return pages.not_found(request, user, "App")
        except ArcternError as exc:
            pages.flash(request, exc.message)
            return pages.redirect(f"/developers/projects/{project_id}/apps/{client_id}")
        return app_page(
            request,
            user,
            project,
            client,
            count,
            new_secret=secret,
            notice="New client secret generated. Earlier secrets keep working.",
        )

    return router
