-- Written by `python -m state.migrate`: the schema the migrations build on SQLite, as
-- SQLite recorded it. A new SQLite database is created from it (state/migrate.py).
-- Do not edit; rewrite it after adding a migration.
-- revision: 0010
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE "assistants" (
	assistant_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	instructions TEXT NOT NULL, 
	greeting TEXT, 
	model VARCHAR(200), 
	voice VARCHAR(200), 
	dynamic_variables JSON, 
	insight_group_id VARCHAR(64), 
	webhook_url TEXT, 
	provider VARCHAR(32) NOT NULL, 
	provider_ref VARCHAR(200), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	keep_number BOOLEAN DEFAULT 0 NOT NULL, 
	PRIMARY KEY (assistant_id)
);
CREATE TABLE call_attempts (
	id INTEGER NOT NULL, 
	scheduled_event_id VARCHAR(64) NOT NULL, 
	attempt_number INTEGER NOT NULL, 
	attempted_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	call_status VARCHAR(16) NOT NULL, 
	call_duration FLOAT, 
	telnyx_call_control_id VARCHAR(200), 
	conversation_id VARCHAR(200), 
	cost FLOAT, 
	voicemail BOOLEAN NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(scheduled_event_id) REFERENCES scheduled_events (scheduled_event_id), 
	CONSTRAINT uq_call_attempts_event UNIQUE (scheduled_event_id, attempt_number)
);
CREATE TABLE conversations (
	conversation_id VARCHAR(200) NOT NULL, 
	name VARCHAR(300), 
	run_id VARCHAR(64), 
	assistant_id VARCHAR(64), 
	scheduled_event_id VARCHAR(64), 
	attempt_number INTEGER, 
	channel VARCHAR(16) NOT NULL, 
	end_user_target VARCHAR(200), 
	agent_target VARCHAR(200), 
	instructions TEXT, 
	greeting TEXT, 
	dynamic_variables JSON, 
	metadata JSON, 
	call_status VARCHAR(16), 
	duration_secs FLOAT, 
	cost FLOAT, 
	started_at DATETIME, 
	ended_at DATETIME, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (conversation_id), 
	FOREIGN KEY(assistant_id) REFERENCES assistants (assistant_id), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id)
);
CREATE TABLE dial_pacing (
	pacing_id INTEGER NOT NULL, 
	next_dial_at DATETIME, 
	PRIMARY KEY (pacing_id)
);
CREATE TABLE do_not_call (
	target VARCHAR(200) NOT NULL, 
	reason TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (target)
);
CREATE TABLE events (
	seq INTEGER NOT NULL, 
	event_id VARCHAR(64) NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	summary TEXT NOT NULL, 
	step_id VARCHAR(100), 
	agent_id VARCHAR(100), 
	payload JSON, 
	idempotency_key VARCHAR(200), 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (seq), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id), 
	UNIQUE (event_id), 
	CONSTRAINT uq_events_run_idempotency UNIQUE (run_id, idempotency_key)
);
CREATE TABLE insight_group_members (
	insight_group_id VARCHAR(64) NOT NULL, 
	insight_id VARCHAR(64) NOT NULL, 
	position INTEGER NOT NULL, 
	PRIMARY KEY (insight_group_id, insight_id), 
	FOREIGN KEY(insight_group_id) REFERENCES insight_groups (insight_group_id), 
	FOREIGN KEY(insight_id) REFERENCES insights (insight_id)
);
CREATE TABLE insight_groups (
	insight_group_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	webhook_url TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (insight_group_id)
);
CREATE TABLE insight_results (
	id INTEGER NOT NULL, 
	conversation_id VARCHAR(200) NOT NULL, 
	insight_id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	result JSON, 
	error TEXT, 
	extractor VARCHAR(32), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, truth JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(conversation_id) REFERENCES conversations (conversation_id), 
	FOREIGN KEY(insight_id) REFERENCES insights (insight_id), 
	CONSTRAINT uq_insight_results_conv UNIQUE (conversation_id, insight_id)
);
CREATE TABLE insights (
	insight_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	instructions TEXT NOT NULL, 
	parameters JSON, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (insight_id)
);
CREATE TABLE messages (
	id INTEGER NOT NULL, 
	conversation_id VARCHAR(200) NOT NULL, 
	seq INTEGER NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	text TEXT NOT NULL, 
	sent_at DATETIME, facts JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(conversation_id) REFERENCES conversations (conversation_id)
);
CREATE TABLE missions (
	mission_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	description TEXT, 
	instructions TEXT, 
	metadata JSON, 
	execution_mode VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (mission_id)
);
CREATE TABLE phone_numbers (
	phone_number VARCHAR(32) NOT NULL, 
	number_id VARCHAR(100) NOT NULL, 
	assistant_id VARCHAR(64), 
	hd_voice BOOLEAN NOT NULL, 
	provider VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (phone_number), 
	FOREIGN KEY(assistant_id) REFERENCES assistants (assistant_id), 
	UNIQUE (number_id)
);
CREATE TABLE plan_steps (
	id INTEGER NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	step_id VARCHAR(100) NOT NULL, 
	description TEXT NOT NULL, 
	sequence INTEGER NOT NULL, 
	parent_step_id VARCHAR(100), 
	status VARCHAR(16) NOT NULL, 
	metadata JSON, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id), 
	CONSTRAINT uq_plan_steps_run_step UNIQUE (run_id, step_id)
);
CREATE TABLE run_agents (
	run_id VARCHAR(64) NOT NULL, 
	assistant_id VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (run_id, assistant_id), 
	FOREIGN KEY(assistant_id) REFERENCES assistants (assistant_id), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id)
);
CREATE TABLE run_targets (
	run_id VARCHAR(64) NOT NULL, 
	position INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	phone VARCHAR(200) NOT NULL, 
	target JSON, 
	step_id VARCHAR(100), 
	state VARCHAR(16) NOT NULL, 
	scheduled_event_id VARCHAR(64), 
	memo JSON, 
	outcome JSON, 
	PRIMARY KEY (run_id, position), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id)
);
CREATE TABLE runs (
	run_id VARCHAR(64) NOT NULL, 
	mission_id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	input JSON, 
	metadata JSON, 
	variables JSON, 
	result_summary TEXT, 
	result_payload JSON, 
	error TEXT, 
	call_budget INTEGER, 
	calls_placed INTEGER NOT NULL, 
	approval_required BOOLEAN NOT NULL, 
	approved_at DATETIME, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	updated_at DATETIME NOT NULL, recorded_at DATETIME, 
	PRIMARY KEY (run_id), 
	FOREIGN KEY(mission_id) REFERENCES missions (mission_id)
);
CREATE TABLE "scheduled_events" (
	scheduled_event_id VARCHAR(64) NOT NULL, 
	assistant_id VARCHAR(64) NOT NULL, 
	run_id VARCHAR(64), 
	step_id VARCHAR(100), 
	telnyx_conversation_channel VARCHAR(16) NOT NULL, 
	telnyx_end_user_target VARCHAR(200) NOT NULL, 
	telnyx_agent_target VARCHAR(200) NOT NULL, 
	scheduled_at_fixed_datetime DATETIME NOT NULL, 
	requested_at DATETIME NOT NULL, 
	due_at DATETIME NOT NULL, 
	text TEXT, 
	dynamic_variables JSON, 
	conversation_metadata JSON, 
	max_retries_client_errors INTEGER NOT NULL, 
	retry_interval_secs INTEGER, 
	status VARCHAR(16) NOT NULL, 
	call_status VARCHAR(16), 
	conversation_id VARCHAR(200), 
	errors JSON, 
	idempotency_key VARCHAR(200), 
	timezones JSON, 
	calling_window JSON, 
	deferrals JSON, 
	hold_reason VARCHAR(32), 
	current_attempt INTEGER NOT NULL, 
	in_flight_call_control_id VARCHAR(200), 
	in_flight_placed_at DATETIME, 
	in_flight_context JSON, 
	recovered BOOLEAN NOT NULL, 
	lease_owner VARCHAR(100), 
	lease_expires_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	caller_fixed BOOLEAN DEFAULT 0 NOT NULL, 
	PRIMARY KEY (scheduled_event_id), 
	UNIQUE (idempotency_key), 
	FOREIGN KEY(assistant_id) REFERENCES assistants (assistant_id), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id)
);
CREATE TABLE sim_clock (
	clock_id INTEGER NOT NULL, 
	sim_at DATETIME NOT NULL, 
	wall_at FLOAT NOT NULL, 
	speed FLOAT NOT NULL, 
	seen_at FLOAT NOT NULL, 
	PRIMARY KEY (clock_id)
);
CREATE TABLE telnyx_ids (
	kind VARCHAR(32) NOT NULL, 
	local_id VARCHAR(64) NOT NULL, 
	telnyx_id VARCHAR(128) NOT NULL, 
	fingerprint VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (kind, local_id)
);
CREATE TABLE telnyx_mirror_ids (
	kind VARCHAR(16) NOT NULL, 
	local_id VARCHAR(200) NOT NULL, 
	remote_id VARCHAR(200), 
	sent VARCHAR(64), 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (kind, local_id)
);
CREATE TABLE telnyx_outbox (
	id INTEGER NOT NULL, 
	lane VARCHAR(80) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	ref VARCHAR(64) NOT NULL, 
	run_id VARCHAR(64), 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	lease_until DATETIME, 
	last_error TEXT, 
	remote_id VARCHAR(200), 
	created_at DATETIME NOT NULL, 
	delivered_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE TABLE webhook_deliveries (
	id INTEGER NOT NULL, 
	delivery_id VARCHAR(64) NOT NULL, 
	conversation_id VARCHAR(200) NOT NULL, 
	insight_group_id VARCHAR(64), 
	url TEXT NOT NULL, 
	attempt INTEGER NOT NULL, 
	status_code INTEGER, 
	latency_ms FLOAT, 
	error TEXT, 
	delivered BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_call_attempts_scheduled_event_id ON call_attempts (scheduled_event_id);
CREATE INDEX ix_conversations_assistant_id ON conversations (assistant_id);
CREATE INDEX ix_conversations_end_user_target ON conversations (end_user_target);
CREATE INDEX ix_conversations_run_id ON conversations (run_id);
CREATE INDEX ix_conversations_scheduled_event_id ON conversations (scheduled_event_id);
CREATE INDEX ix_events_run_seq ON events (run_id, seq);
CREATE INDEX ix_insight_results_conversation_id ON insight_results (conversation_id);
CREATE INDEX ix_messages_conversation_seq ON messages (conversation_id, seq);
CREATE INDEX ix_missions_created_at ON missions (created_at);
CREATE INDEX ix_plan_steps_run_id ON plan_steps (run_id);
CREATE INDEX ix_run_targets_run_state ON run_targets (run_id, state, position);
CREATE INDEX ix_run_targets_scheduled_event_id ON run_targets (scheduled_event_id);
CREATE INDEX ix_runs_created_at ON runs (created_at);
CREATE INDEX ix_runs_mission_id ON runs (mission_id);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_scheduled_events_assistant_id ON scheduled_events (assistant_id);
CREATE INDEX ix_scheduled_events_claim ON scheduled_events (status, due_at);
CREATE INDEX ix_scheduled_events_run_id ON scheduled_events (run_id);
CREATE INDEX ix_telnyx_ids_telnyx_id ON telnyx_ids (telnyx_id);
CREATE INDEX ix_telnyx_outbox_lane ON telnyx_outbox (lane, status, id);
CREATE INDEX ix_telnyx_outbox_status ON telnyx_outbox (status, next_attempt_at);
CREATE INDEX ix_webhook_deliveries_conversation_id ON webhook_deliveries (conversation_id);
CREATE INDEX ix_webhook_deliveries_delivery_id ON webhook_deliveries (delivery_id);
CREATE TRIGGER trg_run_targets_call_ended AFTER UPDATE OF status ON scheduled_events FOR EACH ROW WHEN NEW.status IN ('cancelled', 'completed', 'failed') AND OLD.status NOT IN ('cancelled', 'completed', 'failed') BEGIN UPDATE run_targets SET state = 'ended' WHERE scheduled_event_id = NEW.scheduled_event_id AND state = 'scheduled'; END;
INSERT INTO alembic_version (version_num) VALUES ('0010');
