#!/usr/bin/env escript
-mode(compile).
%% Erlang's link protocol with krill (UNLINK_ID, UNLINK_ID_ACK), both ways.
%% Two krill processes: `unlt` traps exits, `unln` does not.
%% 1. An Erlang process links to, then unlinks, each of them, then exits
%%    with boom: they get nothing (and, the test checks after this node is
%%    gone, no noconnection either: the link is gone on the krill side).
%% 2. Each of them links to, then unlinks (kr_link, kr_unlink), an Erlang
%%    process: erts shows it linked to nobody; it then exits with boom and
%%    they get nothing. A second Erlang process each is linked, told to
%%    exit and unlinked in one go, so that its exit signal crosses the
%%    unlink: they get nothing from it either.
%% Last, each says whether it got anything and whether the krill node
%% still holds a link record. Exit 0 when all is right; else a number
%% saying where, and a line on stderr.
main([Krill]) ->
    K = list_to_atom(Krill),
    Pt = hello(2, {unlt, K}),
    Pn = hello(3, {unln, K}),
    %% 1. Erlang links, unlinks, exits abnormally.
    [begin
         {E, R} = spawn_monitor(fun() ->
                                        true = link(P),
                                        true = unlink(P),
                                        exit(boom)
                                end),
         receive {'DOWN', R, process, E, boom} -> ok
         after 10000 -> fail(4, {no_down, P}) end
     end || P <- [Pt, Pn]],
    %% 2. krill links, unlinks; the Erlang process then exits abnormally.
    Victims = [{unlt, victim(), victim()}, {unln, victim(), victim()}],
    [{Name, K} ! {victim, self(), V, X} || {Name, V, X} <- Victims],
    [receive {krill, 5, <<>>} -> ok after 10000 -> fail(5, no_unlink) end
     || _ <- Victims],
    [links(6, V, []) || {_, V, _} <- Victims],
    Refs = [begin V ! {krill, 1, <<>>}, monitor(process, V) end
            || {_, V, _} <- Victims],
    [receive {'DOWN', R, process, _, boom} -> ok
     after 10000 -> fail(7, no_exit) end || R <- Refs],
    timer:sleep(300), %% time for an exit signal that should not come
    [begin
         {Name, K} ! {check, self()},
         receive
             {krill, 7, <<>>} -> ok;
             {krill, 8, <<>>} -> fail(8, {Name, got_an_exit_or_holds_a_link})
         after 10000 -> fail(9, {Name, no_check}) end
     end || Name <- [unlt, unln]],
    halt(0).

hello(Code, To) ->
    To ! {hello, self()},
    receive {pid, P} -> P after 10000 -> fail(Code, {no_pid, To}) end.

victim() ->
    spawn(fun() -> receive {krill, 1, <<>>} -> exit(boom) end end).

fail(Code, What) ->
    io:format(standard_error, "unlinks.escript: ~p: ~p~n", [Code, What]),
    halt(Code).

%% P's links are L within 5 s (the unlink reaches P by its own way).
links(Code, P, L) -> links(Code, P, L, 50).
links(Code, P, L, 0) ->
    fail(Code, {links, erlang:process_info(P, links), L});
links(Code, P, L, Tries) ->
    case erlang:process_info(P, links) of
        {links, L} -> ok;
        _ -> timer:sleep(100), links(Code, P, L, Tries - 1)
    end.
