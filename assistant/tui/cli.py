"""``assistant chat``: registers the subcommand; Textual and the advisor load only when it runs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ..knowledge import Corpus
    from .app import ConversationFactory, ConversationLike

__all__ = ["add_parsers", "conversation_factory"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "chat", help="talk a plan through in the terminal (the chat app)",
        description="Open the chat: paste, describe or open a transformation plan, read the critique, ask "
                    "follow-up questions, and export. Offline unless --model (or ASSISTANT_MODEL) is set. "
                    "Conversations are saved under ASSISTANT_HOME and can be resumed.")
    p.add_argument("--model", help="a litellm model string, e.g. ollama/llama3.1 (default: ASSISTANT_MODEL or offline)")
    p.add_argument("--session", metavar="ID", help="resume a saved conversation (ids: --list-sessions)")
    p.add_argument("--list-sessions", action="store_true", help="print the saved conversations and exit")
    p.set_defaults(handler=cmd_chat)


def conversation_factory(spec: str | None) -> ConversationFactory:
    """Conversations with the shared advisor; with a model when ``spec`` names one.

    Runs in the app's worker thread, so the advisor (and litellm, when a model is used) load
    while the window is already open.
    """

    def build(state: dict[str, Any] | None) -> ConversationLike:
        from ..advice.advisor import get_advisor
        from ..advice.conversation import Conversation

        model = None
        if spec:
            # lazy: litellm costs seconds to import
            from ..advice.llm.litellm_model import get_chat_model

            model = get_chat_model(spec)
        advisor = get_advisor()
        if state is not None:
            return cast("ConversationLike", Conversation.from_state(advisor, state, model=model))
        return cast("ConversationLike", Conversation(advisor, model=model))

    return build


def _corpus() -> Corpus:
    from ..advice.advisor import get_advisor

    return get_advisor().corpus


def cmd_chat(args: argparse.Namespace) -> int:
    from ..settings import get_settings
    from .sessions import SessionStore

    store = SessionStore()
    if store.notice:
        print(f"assistant: {store.notice}", file=sys.stderr)
    try:
        if args.list_sessions:
            for info in store.list_sessions():
                noun = "message" if info.messages == 1 else "messages"
                print(f"{info.id}  {info.updated_at:%Y-%m-%d %H:%M}  {info.messages:>3} {noun}  {info.title}")
            return 0
        if args.session:
            store.get(args.session)  # an unknown id fails here, with "did you mean ...?"
        spec = args.model if args.model is not None else get_settings().model

        from .app import ChatApp

        app = ChatApp(conversation_factory(spec), store, corpus=_corpus, session_id=args.session,
                      backend=spec or "offline")
        app.run()
    finally:
        store.close()
    if app.return_code not in (None, 0):
        return int(app.return_code or 1)
    if app.session_id and store.saving:
        print(f"Saved. Resume with: assistant chat --session {app.session_id}", file=sys.stderr)
    return 0
