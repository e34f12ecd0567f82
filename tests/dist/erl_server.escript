#!/usr/bin/env escript
-mode(compile).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
%% An Erlang gen_server for krill to call: registered as erlsrv; tells the
%% krill process registered as `client` on the krill node its pid
%% ({server, Pid}), then serves until killed by the test.
%%   {echo, X}      -> {ok, X}
%%   {late, Ms, X}  -> {late, X}, Ms milliseconds later (gen_server:reply)
%%   {die, Reason}  -> the server stops with Reason, no reply
%%   monitored_by   -> {ok, N}: N processes monitor it now
main([Krill]) ->
    K = list_to_atom(Krill),
    {ok, Pid} = gen_server:start({local, erlsrv}, ?MODULE, [], []),
    {client, K} ! {server, Pid},
    io:format("ready~n"),
    receive stop -> ok after 60000 -> ok end,
    halt(0).

init([]) -> {ok, nil}.
handle_call({echo, X}, _From, S) -> {reply, {ok, X}, S};
handle_call({late, Ms, X}, From, S) ->
    spawn(fun() -> timer:sleep(Ms), gen_server:reply(From, {late, X}) end),
    {noreply, S};
handle_call({die, Reason}, _From, S) -> {stop, Reason, S};
handle_call(monitored_by, _From, S) ->
    {monitored_by, L} = process_info(self(), monitored_by),
    {reply, {ok, length(L)}, S}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.
