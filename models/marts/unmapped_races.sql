with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

races_without_id as (
    select * from {{ ref('int_races_without_id') }}
),

unmapped as (
    select
        race_id,
        season as year,
        race_name as name,
        reason,
        detail,
        circuit_id,
        candidate_count,
        race_start_at
    from mapping
    where status = 'unmapped'
),

-- The rows of the races table without an id: invalid_race ('no id'), in no mapping (it is keyed
-- by the id), named by their other fields.
without_id as (
    select
        cast(null as text) as race_id,
        season as year,
        race_name as name,
        'invalid_race' as reason,
        invalid_detail as detail,
        circuit_id,
        cast(null as bigint) as candidate_count,
        race_start_at
    from races_without_id
),

final as (
    select * from unmapped
    union all
    select * from without_id
)

select * from final
